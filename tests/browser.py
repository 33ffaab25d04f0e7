"""Headless Debian chromium driven by Playwright, for the browser tests.

Never runs ``playwright install``: it uses the system chromium and skips when chromium or playwright is missing.
Import the fixture into a test module (``from tests.browser import browser  # noqa: F401``); it is module-scoped.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from typing import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@contextmanager
def launch_chromium() -> Iterator:
    """A headless playwright Browser on the system chromium; skips the test when it cannot be had."""
    if not CHROMIUM:
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"chromium does not start under playwright: {exc}")
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


@contextmanager
def new_page(browser, url: str | None = None) -> Iterator:
    """A page in a fresh 1400x1000 ko-KR context (closed afterwards); ``page.errors`` collects page errors.

    With ``url`` the page is opened there first (``wait_until="domcontentloaded"``).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        if url is not None:
            page.goto(url, wait_until="domcontentloaded")
        yield page
    finally:
        context.close()
