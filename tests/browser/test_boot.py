"""Page start-up in real headless Chromium: named phases, their marks, and a message typed during boot.

To type "during boot" for sure, the tests hold Pyodide's wasm (`page.route`) until the text
is in, so no Python can have run yet; they check that too (no `data-ready`, no first mark).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from client import boot
from tests.browser.helpers import ANSWER_S, PYTHON_READY_S, HeldRuntime, RecordedPage, assert_only_loopback

# Test code, not the page's: every text the status line and the pending note are given, in order.
RECORD_TEXTS = """
window.__texts = {"boot-status": [], "typed-ahead-text": []};
new MutationObserver((records) => {
  for (const record of records) {
    const element = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
    if (element && element.id in window.__texts) window.__texts[element.id].push(element.textContent);
  }
}).observe(document, {childList: true, characterData: true, subtree: true});
"""


@pytest.fixture
def booting(recorded_page: RecordedPage, live_server: str) -> Iterator[tuple[RecordedPage, HeldRuntime]]:
    """The page loaded as far as it goes without Pyodide's wasm."""
    page = recorded_page.page
    page.add_init_script(RECORD_TEXTS)
    held = HeldRuntime(page)
    page.goto(live_server + "/", wait_until="domcontentloaded")
    page.wait_for_function("document.querySelector('#boot-status')")
    yield recorded_page, held
    held.release()


def converse_posts(recorded: RecordedPage) -> list[str]:
    return [u for u in recorded.requests if urlsplit(u).path == "/api/converse"]


def assert_no_python_yet(page: Any) -> None:
    assert page.locator("body").get_attribute("data-ready") is None
    marks = page.evaluate("performance.getEntriesByType('mark').map((m) => m.name)")
    assert boot.INTERPRETER_READY not in marks, marks


def wait_ready(page: Any) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)


def assert_sent_once(recorded: RecordedPage, text: str) -> None:
    page = recorded.page
    user = page.locator("li[data-role=user]")
    expect(user).to_have_count(1)
    expect(user.first.locator("[data-part=bubble]")).to_have_text(text)
    model = page.locator("li[data-role=model]")
    expect(model).to_have_count(1)
    expect(model.first).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    assert model.first.locator("[data-part=bubble]").inner_text().strip()
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")
    assert len(converse_posts(recorded)) == 1, converse_posts(recorded)


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

    shown = page.evaluate("window.__texts['boot-status']")  # every text set, the parser's first one included
    assert [text for i, text in enumerate(shown) if i == 0 or shown[i - 1] != text] == list(boot.PHASES)
    marks = page.evaluate(
        "performance.getEntriesByType('mark').filter((m) => m.name.startsWith('snake:'))"
        ".map((m) => [m.name, m.startTime])"
    )
    assert [name for name, _ in marks] == list(boot.MARKS)
    times = [start for _, start in marks]
    assert times == sorted(times) and times[0] > 0
    assert recorded.errors == []


def test_a_message_sent_with_enter_during_boot_goes_out_once(
    booting: tuple[RecordedPage, HeldRuntime], live_server: str
) -> None:
    recorded, held = booting
    page = recorded.page
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_editable()  # from first paint
    box.press_sequentially("Two lines,")
    box.press("Shift+Enter")
    box.press_sequentially("sent before Python ran.")
    box.press("Enter")
    # Without Python, Enter can only type a newline; that final newline is what says "sent".
    expect(box).to_have_value("Two lines,\nsent before Python ran.\n")
    assert_no_python_yet(page)

    held.release()
    wait_ready(page)
    message = "Two lines,\nsent before Python ran."
    assert_sent_once(recorded, message)
    # Shown as pending from Python's first line until the app sent it.
    assert boot.pending_note(message) in page.evaluate("window.__texts['typed-ahead-text']")
    expect(page.locator("#typed-ahead")).to_be_hidden()

    # Sent means sent: a reload finds the chat as it was, and sends nothing again.
    page.reload()
    wait_ready(page)
    expect(page.locator("li[data-role=user]")).to_have_count(1)
    expect(box).to_have_value("")
    assert len(converse_posts(recorded)) == 1
    assert recorded.errors == []
    assert_only_loopback(recorded)


def test_send_pressed_during_boot_shows_the_message_pending_and_sends_it(
    booting: tuple[RecordedPage, HeldRuntime],
) -> None:
    recorded, held = booting
    page = recorded.page
    box = page.get_by_role("textbox", name="Message")
    box.fill("Pressed Send early.")
    before = page.url
    page.get_by_role("button", name="Send").click()
    pending = page.locator("#typed-ahead")
    expect(pending).to_be_visible()  # HTML alone: no Python has run
    expect(pending).to_contain_text("when the app is ready")
    assert page.url == before  # no form submission, no reload: the text is still there
    expect(box).to_have_value("Pressed Send early.")
    assert_no_python_yet(page)

    held.release()
    wait_ready(page)
    assert_sent_once(recorded, "Pressed Send early.")
    expect(pending).to_be_hidden()
    assert recorded.errors == []


def test_a_draft_typed_during_boot_stays_a_draft(booting: tuple[RecordedPage, HeldRuntime]) -> None:
    recorded, held = booting
    page = recorded.page
    box = page.get_by_role("textbox", name="Message")
    box.press_sequentially("not sent")
    box.press("Shift+Enter")
    box.press_sequentially("yet")
    held.release()
    wait_ready(page)
    expect(box).to_have_value("not sent\nyet")
    expect(page.locator("li[data-role=user]")).to_have_count(0)
    box.press("Enter")  # now Python's Enter
    assert_sent_once(recorded, "not sent\nyet")


def test_coming_back_does_not_turn_a_draft_ending_in_a_newline_into_a_sent_message(
    recorded_page: RecordedPage, live_server: str
) -> None:
    """Chromium restores a form's text on Back; the box opts out, or this draft would read as sent."""
    page = recorded_page.page
    page.goto(live_server + "/")
    wait_ready(page)
    box = page.get_by_role("textbox", name="Message")
    box.press_sequentially("a draft")
    box.press("Shift+Enter")
    expect(box).to_have_value("a draft\n")
    page.goto(live_server + "/health")
    page.go_back()
    wait_ready(page)
    expect(box).to_have_value("")
    expect(page.locator("li[data-role=user]")).to_have_count(0)
    assert converse_posts(recorded_page) == []
