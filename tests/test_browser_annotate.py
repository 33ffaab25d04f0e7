"""The Annotate tab in a real browser (Debian's chromium driven by Playwright): import, pick, keyboard labelling,
undo, colours, escaping, and a layout screenshot. Labels are checked in the database with emotag.store.Store.

Never runs ``playwright install``: it uses the system chromium and skips when chromium or playwright is missing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from emotag.labels import COLORS
from emotag.samples import SAMPLES
from tests.browser import browser, new_page  # noqa: F401  (module-scoped fixture: headless chromium)
from tests.ui_server_db import db_server  # noqa: F401  (module-scoped fixture: the app on a temporary database)

SCREENSHOT = Path("/tmp/emotag_annotate_tab.png")
REVIEW_SCREENSHOT = Path("/tmp/emotag_review_tab.png")
TITLE, STORY = next(iter(SAMPLES.items()))
STORY += '토토가 편지를 읽었어요. "<b>bold</b> <script>window.__pwned=1</script> 고마워!"\n'
OTHER_TITLE, OTHER = list(SAMPLES.items())[1]


def _rgb(hex_color: str) -> tuple[int, ...]:
    h = hex_color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def _css_rgb(value: str) -> tuple[int, ...] | None:
    m = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", value)
    return tuple(int(g) for g in m.groups()) if m else None


@pytest.fixture
def page(browser, db_server):  # noqa: F811
    with new_page(browser, db_server.url) as page:
        page.get_by_role("tab", name="Annotate").click()
        page.locator("#annotate-card").wait_for(state="visible", timeout=30_000)
        yield page


def _wait_sentence(page, sentence_id: int) -> None:
    page.wait_for_function(
        "id => document.querySelector('#annotate-card-inner')?.dataset.sentence === id", arg=str(sentence_id),
        timeout=15_000)


def _wait_label(store, sentence_id: int, annotator: str, label, page) -> None:
    for _ in range(100):
        if store.current_label(sentence_id, annotator) == label:
            return
        page.wait_for_timeout(100)
    assert store.current_label(sentence_id, annotator) == label


def _import(page, text: str, title: str) -> None:
    page.locator("#import-text-box textarea").fill(text)
    page.locator("#import-title input, #import-title textarea").first.fill(title)
    page.locator("#import-text-button").click()
    page.locator("#import-status").get_by_text(f"「{title}」", exact=False).wait_for(timeout=30_000)


def test_keyboard_annotation(page, db_server):  # noqa: F811
    store = db_server.store()
    page.locator("#annotate-annotator input").fill("ann1")
    _import(page, STORY, TITLE)
    _import(page, OTHER, OTHER_TITLE)
    first_story, second_story = store.stories()[-2:]
    _wait_sentence(page, store.sentences(second_story.id)[0].id)  # an import loads the imported story

    # pick the first story from the list
    page.locator("#annotate-story input").click()
    page.get_by_role("option", name=re.compile(re.escape(f"{first_story.id} · {TITLE}"))).click()
    sentences = store.sentences(first_story.id)
    _wait_sentence(page, sentences[0].id)
    assert page.locator("#annotate-card .emo-current").inner_text().strip() == sentences[0].text

    # 3 = 슬픔 sad on the current sentence, then j moves on
    page.locator("#annotate-status").click()  # focus outside any text box
    page.keyboard.press("3")
    _wait_label(store, sentences[0].id, "ann1", "sad", page)
    _wait_sentence(page, sentences[1].id)  # a saved label moves to the next sentence
    page.keyboard.press("j")
    _wait_sentence(page, sentences[2].id)
    assert store.current_labels("ann1", first_story.id) == {sentences[0].id: "sad"}
    page.keyboard.press("2")
    _wait_label(store, sentences[2].id, "ann1", "happy", page)
    _wait_sentence(page, sentences[3].id)
    page.keyboard.press("u")  # undo goes back to sentence 3 and restores its (empty) label
    _wait_label(store, sentences[2].id, "ann1", None, page)
    _wait_sentence(page, sentences[2].id)
    page.keyboard.press("k")
    _wait_sentence(page, sentences[1].id)
    page.keyboard.press("ArrowDown")
    _wait_sentence(page, sentences[2].id)

    # typing in a text box is text, not a label
    entries = len(store.history())
    page.locator("#import-title input").fill("")
    page.locator("#import-title input").press_sequentially("1234jku")
    page.wait_for_timeout(500)
    assert len(store.history()) == entries
    assert page.locator("#import-title input").input_value() == "1234jku"

    # click a label button, then look at the page
    page.locator("#annotate-angry").click()
    _wait_label(store, sentences[2].id, "ann1", "angry", page)
    _wait_sentence(page, sentences[3].id)
    current = page.locator("#annotate-card .emo-current")
    assert "dashed" in current.evaluate("e => getComputedStyle(e).borderTopStyle")  # not labelled yet

    # colours: buttons, the table's "my label" cells, the previous sentences in the card
    for name in COLORS:
        colour = page.locator(f"#annotate-{name}").evaluate("e => getComputedStyle(e).backgroundColor")
        assert _css_rgb(colour) == _rgb(COLORS[name]), (name, colour)
    rows_js = """() => {
        const rows = [];
        for (const cell of document.querySelectorAll('#annotate-table [role=gridcell][data-row]')) {
            const colours = [cell, ...cell.querySelectorAll('*')].map(e => getComputedStyle(e).backgroundColor)
                .filter(c => c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent');
            (rows[+cell.dataset.row] ??= [])[+cell.dataset.col] = [cell.innerText.trim(), colours.pop() || ''];
        }
        return rows.filter(Boolean);
    }"""
    page.wait_for_function(f"() => ({rows_js})().length >= {len(sentences)}", timeout=10_000)
    page.wait_for_function(f"() => ({rows_js})()[2]?.some(c => c && c[0] === '분노 angry')", timeout=10_000)
    rows = page.evaluate(rows_js)
    assert [r[2][0] for r in rows] == [s.text for s in sentences]
    assert rows[0][5][0] == "슬픔 sad" and _css_rgb(rows[0][5][1]) == _rgb(COLORS["sad"])
    assert rows[2][5][0] == "분노 angry" and _css_rgb(rows[2][5][1]) == _rgb(COLORS["angry"])
    assert rows[3][0][0] == "▶ 4"  # the current sentence

    # the last sentence holds markup: shown as text, never run
    page.locator("#annotate-status").click()
    last = sentences[-1]
    for _ in range(len(sentences)):
        page.keyboard.press("j")
    _wait_sentence(page, last.id)
    # the card's id attribute can land a frame before its text under load: wait for the text too
    page.wait_for_function("t => document.querySelector('#annotate-card .emo-current')?.innerText.includes(t)",
                           arg="<b>bold</b>", timeout=15_000)
    assert "<b>bold</b>" in current.inner_text()
    assert page.locator("#annotate-card b:has-text('bold'), #annotate-card script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # one more j at the end says so; under load a key press can be dropped while the previous one still runs,
    # so press again until the message shows (at most five times)
    last_message = page.locator("#annotate-status").get_by_text("last sentence", exact=False)
    for _ in range(5):
        page.keyboard.press("j")
        try:
            last_message.wait_for(timeout=4_000)
            break
        except PlaywrightTimeout:
            continue
    last_message.wait_for(timeout=10_000)
    _wait_sentence(page, last.id)
    page.keyboard.press("k")
    _wait_sentence(page, sentences[-2].id)
    page.keyboard.press("k")
    _wait_sentence(page, sentences[-3].id)

    page.locator("#annotate-counts .js-plotly-plot").wait_for(timeout=20_000)
    assert page.get_by_text("Traceback").count() == 0
    assert not page.errors, page.errors
    assert store.current_labels("ann1", first_story.id) == {sentences[0].id: "sad", sentences[2].id: "angry"}
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    store.close()


def test_review_tab(page, db_server):  # noqa: F811
    store = db_server.store()
    story = store.stories()[0]
    first = store.sentences(story.id)[0]
    store.annotate(first.id, "ann2", "happy")  # disagrees with ann1's sad
    page.get_by_role("tab", name="Review").click()
    page.locator("#review-agreement").click()
    page.locator("#review-summary").get_by_text("Krippendorff", exact=False).wait_for(timeout=20_000)
    table = page.locator("#review-disagreements")
    cell = table.locator("[role=gridcell]", has_text=first.text).first
    cell.wait_for(timeout=10_000)
    cell.click()
    page.wait_for_function(
        "id => document.querySelector('#review-sentence input')?.value === id", arg=str(first.id), timeout=10_000)
    page.locator("#review-label").get_by_text("분노 angry").click()
    page.locator("#review-reviewer input").fill("boss")
    page.locator("#review-adjudicate").click()
    page.locator("#review-status").get_by_text("Final label", exact=False).wait_for(timeout=10_000)
    final = next(f for f in store.final_labels(story.id) if f.sentence_id == first.id)
    assert (final.label, final.source) == ("angry", "adjudicated")
    page.locator("#export-button").click()
    page.locator("#export-status").get_by_text("Exported", exact=False).wait_for(timeout=20_000)
    assert not page.errors, page.errors
    page.screenshot(path=str(REVIEW_SCREENSHOT), full_page=True)
    store.close()
