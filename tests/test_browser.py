"""The Tag tab in a real browser (Debian's chromium driven by Playwright): colours, escaping, layout screenshot.

Never runs ``playwright install``: it uses the system chromium and skips when chromium or playwright is missing.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from emotag.labels import COLORS
from emotag.samples import SAMPLES
from tests.browser import browser, new_page  # noqa: F401  (module-scoped fixture: headless chromium)
from tests.ui_server import app_server  # noqa: F401  (module-scoped fixture: the running app)

SCREENSHOT_COPY = Path("/tmp/emotag_tag_tab.png")
STORY = (next(iter(SAMPLES.values()))
         + '토토가 말했어요. "<script>window.__pwned=1</script> 누가 그랬어! 정말 화가 나!"\n'
         + "편지에는 <b>bold</b> 글씨로 '고마워'라고 쓰여 있었어요. 너무 기뻤어요!\n")


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


LABEL_RGB = {_rgb(c): name for name, c in COLORS.items()}


def _parse_css_color(value: str) -> tuple[int, int, int] | None:
    m = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", value)
    return tuple(int(g) for g in m.groups()) if m else None


@pytest.fixture
def page(browser, app_server):  # noqa: F811
    with new_page(browser, app_server.url) as page:
        page.locator("#tag-text textarea").wait_for(state="visible", timeout=30_000)
        yield page


def test_tag_story_in_browser(page, tmp_path):
    textarea = page.locator("#tag-text textarea")
    textarea.fill(STORY)
    page.locator("#tag-button").click()

    status = page.locator("#tag-status")
    status.get_by_text("Tagged").wait_for(timeout=30_000)
    tokens = page.locator("#tag-story .token.highlighted")
    tokens.first.wait_for(timeout=10_000)
    assert tokens.count() >= 9

    colours = tokens.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    rgb = [_parse_css_color(c) for c in colours]
    assert all(c in LABEL_RGB for c in rgb), f"unexpected colours {set(colours)}"
    assert len({LABEL_RGB[c] for c in rgb}) >= 3, f"only {set(colours)}"

    # the legend shows all four emotions
    legend = page.locator("#tag-story [data-testid='highlighted-text:category-legend']")
    for label in ("중립 neutral", "기쁨 happy", "슬픔 sad", "분노 angry"):
        assert legend.get_by_text(label).count() == 1

    # markup in the story is text, never HTML
    assert page.evaluate("typeof window.__pwned") == "undefined"
    story = page.locator("#tag-story")
    assert story.get_by_text("<b>bold</b>", exact=False).first.is_visible()
    assert story.locator("b, script, img").count() == 0
    table = page.locator("#tag-table")
    table.get_by_text("<b>bold</b>", exact=False).first.wait_for(timeout=10_000)
    assert table.locator("tbody b, tbody script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # both plots drew
    page.locator("#tag-arc .js-plotly-plot").wait_for(timeout=20_000)
    page.locator("#tag-dist .js-plotly-plot").wait_for(timeout=20_000)
    assert page.locator("#tag-arc .scatterlayer .point").count() >= 9
    assert page.locator("#tag-dist .bars .point").count() == 4

    assert textarea.input_value() == STORY  # the text box still holds the story
    assert not page.errors, page.errors

    shot = tmp_path / "emotag_tag_tab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)


def test_bad_input_message_keeps_the_text(page, tmp_path):
    textarea = page.locator("#tag-text textarea")
    textarea.fill("Only English here <i>x</i>")
    page.locator("#tag-button").click()
    message = page.locator("#tag-status").get_by_text("no Korean (Hangul) characters", exact=False)
    message.wait_for(timeout=20_000)
    assert page.locator("#tag-status").get_by_text("Cannot tag this text").is_visible()
    assert textarea.input_value() == "Only English here <i>x</i>"
    assert page.get_by_text("Traceback").count() == 0
    assert page.locator("#tag-status i").count() == 0
    page.screenshot(path=str(tmp_path / "emotag_tag_tab_error.png"))
    shutil.copyfile(tmp_path / "emotag_tag_tab_error.png", SCREENSHOT_COPY.with_name("emotag_tag_tab_error.png"))


def test_example_and_cp949_upload(page, tmp_path):
    textarea = page.locator("#tag-text textarea")
    title, story = list(SAMPLES.items())[1]
    page.get_by_text(title, exact=True).first.click()
    page.wait_for_function("t => document.querySelector('#tag-text textarea').value === t", arg=story,
                           timeout=10_000)

    upload = tmp_path / "동화_cp949.txt"
    other = list(SAMPLES.values())[2]
    upload.write_bytes(other.replace("\n", "\r\n").encode("cp949"))
    page.locator("#tag-upload input[type=file]").set_input_files(str(upload))
    page.wait_for_function("t => document.querySelector('#tag-text textarea').value === t", arg=other,
                           timeout=30_000)
    page.locator("#tag-status").get_by_text("Tagged", exact=False).wait_for(timeout=30_000)
    tokens = page.locator("#tag-story .token.highlighted")
    assert tokens.count() >= 5
    assert "바닷가 마을에" in tokens.first.inner_text()
    assert textarea.input_value() == other
