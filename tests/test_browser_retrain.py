"""The Retrain tab in a real browser (Debian's chromium driven by Playwright): start a tiny KoBERT retrain, watch
the progress text and the loss curve update, reload the page and find the job again, cancel it.

Never runs ``playwright install``: it uses the system chromium and skips when chromium or playwright is missing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import browser, new_page  # noqa: F401  (module-scoped fixture: headless chromium)

from .test_ui_retrain import start_retrain_server
from .tiny_bert import make_tiny_kobert

SCREENSHOT = Path("/tmp/emotag_retrain_tab.png")
STEP = re.compile(r"step (\d[\d,]*) / (\d[\d,]*)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain_browser")
    srv = start_retrain_server(tmp)
    srv.tiny_bert = make_tiny_kobert(tmp / "tiny_kobert")
    try:
        yield srv
    finally:
        srv.stop()


def _step(page) -> tuple[int, int] | None:
    m = STEP.search(page.locator("#retrain-status").first.inner_text())
    return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else None


def _open_tab(page, url):
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Retrain").click()
    page.locator("#retrain-start").wait_for(state="visible", timeout=30_000)


def test_start_watch_reload_and_cancel_a_tiny_retrain(browser, server):  # noqa: F811
    with new_page(browser) as page:
        errors = page.errors
        _open_tab(page, server.url)
        assert page.locator("#retrain-backbone label:has-text('e5-small')").evaluate(
            "el => getComputedStyle(el).pointerEvents") != "none"  # e5-small can be chosen
        page.locator("#retrain-who input, #retrain-who textarea").first.fill("브라우저")
        page.locator("#retrain-backbone label", has_text="KoBERT").click()
        page.locator("#retrain-kobert").first.wait_for(state="visible")
        page.locator("#retrain-backbone-note").get_by_text("KoBERT weights").wait_for()
        base = page.locator("#retrain-base-model input, #retrain-base-model textarea").first
        base.fill(str(server.tiny_bert))
        base.press("Enter")
        page.locator("#retrain-backbone-note").get_by_text("KoBERT weights found").wait_for(timeout=10_000)
        for field, value in (("#retrain-lr", "0.002"), ("#retrain-epochs", "300"), ("#retrain-patience", "300")):
            page.locator(f"{field} input").first.fill(value)
        page.locator("#retrain-valid-fraction input").first.fill("0.25")
        page.locator("#retrain-start").click()

        status = page.locator("#retrain-status").first
        status.get_by_text("Started").first.wait_for(timeout=15_000)
        page.wait_for_function("() => /step [0-9,]+ \\/ [0-9,]+ · epoch/.test(document.querySelector('#retrain-status')"
                               ".innerText)", timeout=90_000)
        first = _step(page)
        page.wait_for_function(f"() => {{ const m = /step ([0-9,]+) \\//.exec(document.querySelector("
                               f"'#retrain-status').innerText); return m && +m[1].replace(/,/g, '') > {first[0]}; }}",
                               timeout=30_000)
        second = _step(page)
        assert second[0] > first[0] and second[1] == first[1]  # the text moves on while the job runs
        page.locator("#retrain-curves .js-plotly-plot").wait_for(timeout=15_000)
        page.wait_for_function("() => { const g = document.querySelector('#retrain-curves .js-plotly-plot'); return g"
                               " && g.data && g.data.some(t => t.name === 'training loss' && t.x.length > 3); }",
                               timeout=30_000)
        run_text = status.inner_text()
        run_id = re.search(r"run (run-\S+)", run_text).group(1)
        page.screenshot(path=str(SCREENSHOT), full_page=False)

        # a reload re-attaches to the running job (it runs in its own process, not in the page)
        _open_tab(page, server.url)
        page.wait_for_function(f"() => document.querySelector('#retrain-status').innerText.includes('{run_id}')"
                               " && /running/.test(document.querySelector('#retrain-status').innerText)",
                               timeout=20_000)
        page.wait_for_function(f"() => {{ const m = /step ([0-9,]+) \\//.exec(document.querySelector("
                               f"'#retrain-status').innerText); return m && +m[1].replace(/,/g, '') > {second[0]}; }}",
                               timeout=30_000)
        after = _step(page)
        assert after[0] > second[0]
        page.locator("#retrain-status").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.locator("#retrain-cancel").click()
        status.get_by_text("cancelled").first.wait_for(timeout=30_000)
        assert "active model is unchanged" in status.inner_text()
        page.wait_for_function(f"() => document.querySelector('#retrain-runs').innerText.includes('{run_id}')",
                               timeout=10_000)  # the run is recorded in the runs table
        assert not page.locator("#retrain-start").is_disabled()
        assert not errors, errors
    assert SCREENSHOT.stat().st_size > 10_000
