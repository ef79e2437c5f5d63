"""Page start-up in real headless Chromium: named phases, their marks, a box that echoes every
keystroke, and a message typed while the app loads.

The tests hold Pyodide's wasm (`page.route`) to see the page before any Python ran (no
`data-ready`, no first mark): the message box is closed then, and opens at our first line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from client import boot
from tests.browser.helpers import ANSWER_S, PYTHON_READY_S, HeldRuntime, RecordedPage, assert_only_loopback

# Test code, not the page's: for each key pressed in the box, whether the app was ready then, and
# how long from the press (the event's timeStamp: when the browser got it, however long the page
# kept it waiting) to the first frame after the box took the character in (its `input` event).
RECORD_ECHO = """
window.__keys = [];
document.addEventListener("keydown", (event) => {
  if (event.target.id !== "prompt" || event.key.length !== 1) return;
  const key = {ready: document.body.dataset.ready === "true", pressed: event.timeStamp, echo: null};
  window.__keys.push(key);
  event.target.addEventListener("input", () => requestAnimationFrame(
    () => { key.echo = performance.now() - key.pressed; }), {once: true});
}, true);
"""
ECHO_MS = 100
FOCUS_THE_BOX = """() => {
  const box = document.querySelector("#prompt");
  if (box && !box.disabled && document.activeElement !== box) box.focus();
  return document.body?.dataset.ready;
}"""

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


def box_opened(recorded: RecordedPage, held: HeldRuntime) -> Any:
    """Check the box is closed while no Python runs, let Python start, and return the box as soon as
    it takes input (the first line of our Python): what the test types next meets the app loading,
    or, on a fast machine, the app itself; either way it must go out once."""
    page = recorded.page
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_disabled()  # Pyodide's start would hold up every keystroke
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    assert_no_python_yet(page)
    held.release()
    expect(box).to_be_editable(timeout=PYTHON_READY_S * 1000)
    return box


def test_a_message_sent_with_enter_while_the_app_loads_goes_out_once(
    booting: tuple[RecordedPage, HeldRuntime], live_server: str
) -> None:
    recorded, held = booting
    page = recorded.page
    box = box_opened(recorded, held)
    expect(box).to_be_focused()  # no click needed to start typing
    box.press_sequentially("Two lines,")
    box.press("Shift+Enter")
    box.press_sequentially("sent as the app loads.")
    # Before the app binds the box, Enter can only type a newline; that final newline says "sent".
    box.press("Enter")
    wait_ready(page)
    assert_sent_once(recorded, "Two lines,\nsent as the app loads.")
    expect(page.locator("#typed-ahead")).to_be_hidden()

    # Sent means sent: a reload finds the chat as it was, and sends nothing again.
    page.reload()
    wait_ready(page)
    expect(page.locator("li[data-role=user]")).to_have_count(1)
    expect(box).to_have_value("")
    assert len(converse_posts(recorded)) == 1
    assert recorded.errors == []
    assert_only_loopback(recorded)


def test_send_pressed_while_the_app_loads_sends_the_message_once(
    booting: tuple[RecordedPage, HeldRuntime],
) -> None:
    recorded, held = booting
    page = recorded.page
    box = box_opened(recorded, held)
    box.fill("Pressed Send early.")
    before = page.url
    page.get_by_role("button", name="Send").click()  # before the app binds it: the popover, by HTML alone
    wait_ready(page)
    assert page.url == before  # no form submission, no reload
    assert_sent_once(recorded, "Pressed Send early.")
    expect(page.locator("#typed-ahead")).to_be_hidden()
    assert recorded.errors == []


def test_a_draft_typed_while_the_app_loads_stays_a_draft(booting: tuple[RecordedPage, HeldRuntime]) -> None:
    recorded, held = booting
    page = recorded.page
    box = box_opened(recorded, held)
    box.press_sequentially("not sent")
    box.press("Shift+Enter")
    box.press_sequentially("yet")
    wait_ready(page)
    expect(box).to_have_value("not sent\nyet")
    expect(page.locator("li[data-role=user]")).to_have_count(0)
    box.press("Enter")  # now the app's Enter
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


def echoes(page: Any, typed: int) -> list[float]:
    """The echo times of the keys pressed in the box, once every one of `typed` has shown."""
    page.wait_for_function("n => window.__keys.length === n && window.__keys.every((k) => k.echo !== null)", arg=typed)
    return [float(key["echo"]) for key in page.evaluate("window.__keys")]


def test_every_keystroke_during_a_cold_boot_is_echoed_within_100_ms(
    recorded_page: RecordedPage, live_server: str
) -> None:
    """Keys are pressed one after another from the start of a cold load until the app is ready: the
    box takes them from the first line of our Python on, and shows each within 100 ms. Once the
    typing pauses, the Markdown renderer loads; keys pressed after that show as fast."""
    page = recorded_page.page
    page.add_init_script(RECORD_ECHO)
    page.goto(live_server + "/", wait_until="commit")  # a fresh context: nothing cached
    # As a user would, put the caret in the box as soon as it takes it, and type.
    while page.evaluate(FOCUS_THE_BOX) != "true":
        page.keyboard.press("x")
    for _ in range(5):
        page.keyboard.press("x")
    box = page.get_by_role("textbox", name="Message")
    keys = page.evaluate("window.__keys")
    before_ready = sum(not key["ready"] for key in keys)
    expect(box).to_have_value("x" * len(keys))
    during_boot = echoes(page, len(keys))
    print(f"{len(keys)} keys, {before_ready} before ready; echoed in ms: max {max(during_boot):.1f}")
    assert before_ready >= 1  # typed while the app was still loading

    assert max(during_boot) <= ECHO_MS, sorted(during_boot)[-5:]

    page.wait_for_selector("body[data-markdown=ready]", timeout=PYTHON_READY_S * 1000)
    for _ in range(10):
        page.keyboard.press("y")
    expect(box).to_have_value("x" * len(keys) + "y" * 10)
    after = echoes(page, len(keys) + 10)[len(keys):]
    print(f"after the Markdown renderer loaded: max {max(after):.1f} ms")
    assert max(after) <= ECHO_MS, sorted(after)[-5:]
    assert recorded_page.errors == []
