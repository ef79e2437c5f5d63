"""Headless Chromium for the browser tests: Debian's build, driven by Playwright.

The browser is the system one (no browser download); its background services are off so
that the only network traffic is the page's own, which the tests then check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import RecordedPage
from tests.fakes import SlowStream

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def recorded_page(chromium: Any) -> Iterator[RecordedPage]:
    recorded = RecordedPage(chromium)
    yield recorded
    recorded.context.close()


@pytest.fixture
def axe_page(chromium: Any) -> Iterator[RecordedPage]:
    """A recorded page whose context lets axe be injected (an inline script the page's CSP forbids)."""
    recorded = RecordedPage(chromium, viewport={"width": 1000, "height": 760}, bypass_csp=True)
    yield recorded
    recorded.context.close()


@pytest.fixture
def slow_stream() -> Iterator[SlowStream]:
    stream = SlowStream()
    yield stream
    stream.close()
