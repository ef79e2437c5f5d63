"""Page start-up in real headless Chromium: named phases and their marks.

To see the page before Python for sure, the tests hold Pyodide's wasm (`page.route`); they
check that no Python has run yet (no `data-ready`, no first mark).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from client import boot
from tests.browser.conftest import RecordedPage
from tests.browser.test_chat_page import PYTHON_READY_S

WASM = "**/pyodide/pyodide.asm.wasm"

# Test code, not the page's: every text the status line is given, in order.
RECORD_PHASES = """
window.__phases = [];
new MutationObserver((records) => {
  for (const record of records) {
    const status = record.target.closest ? record.target.closest("#boot-status") : record.target.parentElement;
    if (status && status.id === "boot-status") window.__phases.push(status.textContent);
  }
}).observe(document, {childList: true, characterData: true, subtree: true});
"""


class HeldRuntime:
    """Holds every request for Pyodide's wasm until `release()`: Python cannot start before."""

    def __init__(self, page: Any) -> None:
        self.held: list[Any] = []
        self.released = False
        page.route(WASM, self._hold)

    def _hold(self, route: Any) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        self.released = True
        held, self.held = self.held, []
        for route in held:
            route.continue_()


@pytest.fixture
def booting(recorded_page: RecordedPage, live_server: str) -> Iterator[tuple[RecordedPage, HeldRuntime]]:
    """The page loaded as far as it goes without Pyodide's wasm."""
    page = recorded_page.page
    page.add_init_script(RECORD_PHASES)
    held = HeldRuntime(page)
    page.goto(live_server + "/", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('#boot-status')")
    yield recorded_page, held
    held.release()


def assert_no_python_yet(page: Any) -> None:
    assert page.locator("body").get_attribute("data-ready") is None
    marks = page.evaluate("performance.getEntriesByType('mark').map((m) => m.name)")
    assert boot.INTERPRETER_READY not in marks, marks


def wait_ready(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)


def test_status_line_names_each_phase_and_marks_them_for_the_bench(
    booting: tuple[RecordedPage, HeldRuntime],
) -> None:
    recorded, held = booting
    page = recorded.page
    status = page.get_by_role("status")
    expect(status).to_have_text(boot.STARTING)  # the first phase, before any Python
    assert_no_python_yet(page)

    held.release()
    wait_ready(page)
    expect(status).to_have_text("Ready.")  # the last; the spinner is gone
    expect(page.locator("#loading .animate-spin")).to_have_count(0)
    expect(page.get_by_role("progressbar")).to_have_count(0)

    shown = page.evaluate("window.__phases")  # every text set, the parser's first one included
    assert [text for i, text in enumerate(shown) if i == 0 or shown[i - 1] != text] == list(boot.PHASES)
    marks = page.evaluate(
        "performance.getEntriesByType('mark').filter((m) => m.name.startsWith('snake:'))"
        ".map((m) => [m.name, m.startTime])"
    )
    assert [name for name, _ in marks] == list(boot.MARKS)
    times = [start for _, start in marks]
    assert times == sorted(times) and times[0] > 0
    assert recorded.errors == []
