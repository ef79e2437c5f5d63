"""The message box knows the limits before sending, in real headless Chromium on the real server:
the live token count near the end of the context (counted by the server's /api/tokens, as files
are), a message that cannot fit refused with its numbers, a long paste offered as a file, long sent
messages folded under "Show all", a one-line box with icon buttons on a phone, Enter while an answer
streams, and Escape leaving an edit. Answers come from stand-ins where the test is about the box.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import AXE, RUN_AXE, RecordedPage, ask, assert_only_loopback, done, open_chat, sse
from tests.fakes import SlowStream
from tests.harness import ROOT

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LONG = "\n".join(f"Line {n} of a long message." for n in range(1, 61))  # folds: over 20 lines
PASTE = "x" * 6_000 + " end"  # over client.draft.LONG_PASTE
# Per key typed: from its keydown to its text in the box, after the page's own handlers (the count's among them).
ECHO = """() => { window.echo = []; let down = 0;
  const box = document.getElementById('prompt');
  box.addEventListener('keydown', e => { down = e.timeStamp; });
  box.addEventListener('input', () => window.echo.push(performance.now() - down)); }"""
PASTE_EVENT = """(text) => { const data = new DataTransfer(); data.setData('text/plain', text);
  document.getElementById('prompt').dispatchEvent(
    new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true})); }"""


def answer_at_once(page: Any) -> None:
    """Answers from a stand-in: the test is about the box, not the model."""
    body = sse(("token", {"text": "Noted."}), done())
    page.route("**/api/converse", lambda r: r.fulfill(status=200, content_type="text/event-stream", body=body))


def box(page: Any) -> Any:
    return page.get_by_role("textbox", name="Message")


def axe_clean(page: Any) -> None:
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_and_desktop_box_count_and_folded_message(axe_page: RecordedPage, live_server: str, scheme: str) -> None:
    page = axe_page.page
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size(PHONE)
    open_chat(axe_page, live_server)
    answer_at_once(page)

    # A phone: the empty box is one line, beside icon buttons that keep their names.
    prompt = box(page)
    assert (prompt.bounding_box() or {"height": 99})["height"] <= 50  # one line: 26 px of text, its padding and border
    row = prompt.bounding_box() or {}
    for name in ("Attach", "Tools", "Send"):
        button = page.get_by_role("button", name=name, exact=True)
        shape = button.bounding_box() or {}
        bottom = shape["y"] + shape["height"]
        assert shape["width"] <= 44.5 and abs(bottom - row["y"] - row["height"]) < 1, name  # a square, on the box's row
        expect(button.locator("svg")).to_be_visible()

    # A long message is sent whole, and shown folded under "Show all".
    ask(page, LONG)
    expect(page.locator("li[data-role=model]").last).to_have_attribute("data-status", "done")
    sent = page.locator("li[data-role=user] [data-part=bubble]").last
    toggle = page.get_by_role("button", name="Show all")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    folded = (sent.bounding_box() or {})["height"]
    assert folded <= 300
    toggle.click()
    expect(page.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    assert (sent.bounding_box() or {})["height"] > 2 * folded
    expect(sent).to_have_text(LONG)
    page.get_by_role("button", name="Edit message").click()  # an edit takes the whole text
    expect(prompt).to_have_value(LONG)
    page.keyboard.press("Escape")
    expect(prompt).to_have_value("")

    # A long paste asks first (left open: axe and the screenshots see it beside the count).
    page.evaluate(PASTE_EVENT, PASTE)
    expect(page.get_by_role("group", name=re.compile("This paste is 6,004 characters"))).to_be_visible()

    # Near the context's end, the box counts the draft (the server's count, after a pause in typing).
    prompt.fill("word " * 3_000)
    count = page.locator("#draft-count")
    expect(count).to_have_text(re.compile(r"^[\d,]+ tokens · with the chat [\d,]+ of [\d,]+"), timeout=20_000)
    # Typing on while counts come and go: each key shows at once (the count never holds the box).
    page.evaluate(ECHO)
    prompt.press("End")
    page.keyboard.type("and more words ")
    expect(count).to_have_text(re.compile(r"^3,00[3-9] tokens"), timeout=20_000)  # counted again, once it paused
    echo = page.evaluate("window.echo")
    # Measured 5-16 ms a key, one 51 ms, with the machine loaded; a count held in the page would take seconds.
    assert len(echo) == 15 and sorted(echo)[7] < 50 and max(echo) < 200, echo
    page.screenshot(path=str(ROOT / "test-results" / f"message-box-{scheme}-phone.png"))
    axe_clean(page)

    page.set_viewport_size(DESKTOP)
    for name in ("Attach", "Tools", "Send"):  # words again, no icons
        expect(page.get_by_role("button", name=name, exact=True)).to_have_text(name)
        expect(page.get_by_role("button", name=name, exact=True).locator("svg")).to_be_hidden()
    expect(count).to_be_visible()
    page.screenshot(path=str(ROOT / "test-results" / f"message-box-{scheme}-desktop.png"))
    axe_clean(page)
    assert_only_loopback(axe_page)
    assert axe_page.errors == []


def test_too_long_is_refused_with_its_numbers_and_a_long_paste_asks_once(
    axe_page: RecordedPage, live_server: str
) -> None:
    page = axe_page.page
    page.set_viewport_size(DESKTOP)
    open_chat(axe_page, live_server)
    answer_at_once(page)
    prompt = box(page)

    # A message that cannot fit: the count says so in red, and Enter keeps it here, with the numbers.
    text = "word " * 6_000
    prompt.fill(text)
    too_long = re.compile(r"^Too long to send: this message is [\d,]+ tokens; this chat's model takes [\d,]+")
    expect(page.locator("#draft-count")).to_have_text(too_long, timeout=20_000)
    prompt.press("Enter")
    expect(page.locator("#attach-note")).to_have_text(too_long)
    expect(prompt).to_have_value(text)
    # Enter at once, before the pause that counts: a draft that may not fit is counted first, then refused.
    prompt.fill(text + "word")
    prompt.press("Enter")
    expect(page.locator("#attach-note")).to_have_text(re.compile(r"^Too long to send: this message is 6,001 tokens"))
    expect(prompt).to_have_value(text + "word")
    expect(page.locator("#prompt-note")).to_have_text("")
    expect(page.locator("li[data-role=user]")).to_have_count(0)
    prompt.fill("")
    expect(page.locator("#draft-count")).to_be_hidden()

    # The first long paste asks (Escape drops that paste, and asks again the next time); the answer holds for the visit.
    page.evaluate(PASTE_EVENT, PASTE)
    ask_line = page.get_by_role("group", name=re.compile("This paste is 6,004 characters"))
    expect(ask_line).to_be_visible()
    expect(page.get_by_role("button", name="Attach as a file")).to_be_focused()
    page.keyboard.press("Escape")
    expect(ask_line).to_be_hidden()
    expect(prompt).to_be_focused()
    expect(prompt).to_have_value("")
    page.evaluate(PASTE_EVENT, PASTE)
    expect(ask_line).to_be_visible()
    axe_clean(page)
    page.get_by_role("button", name="Attach as a file").click()
    expect(ask_line).to_be_hidden()
    chips = page.locator("#attached [data-part=file-name]")
    expect(chips).to_have_text(["pasted.txt"], timeout=20_000)  # counted by the server first
    page.evaluate(PASTE_EVENT, PASTE)
    expect(chips).to_have_text(["pasted.txt", "pasted-2.txt"], timeout=20_000)
    expect(ask_line).to_be_hidden()
    expect(prompt).to_have_value("")
    prompt.fill("What is in these?")
    prompt.press("Enter")
    sent = page.locator("li[data-role=user]").last
    expect(sent.locator("[data-part=file-name]")).to_have_text(["pasted.txt", "pasted-2.txt"])

    # A new visit asks again; "Paste anyway" puts the text where the cursor is.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
    box(page).fill("Before: ")
    page.evaluate(PASTE_EVENT, PASTE)
    page.get_by_role("button", name="Paste anyway").click()
    expect(box(page)).to_have_value("Before: " + PASTE)
    expect(box(page)).to_be_focused()
    expect(page.locator("#attached [data-part=file-name]")).to_have_count(0)
    assert axe_page.errors == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_enter_while_streaming_says_wait_and_escape_ends_an_edit(
    axe_page: RecordedPage, live_server: str, slow_stream: SlowStream, viewport: dict[str, int]
) -> None:
    page = axe_page.page
    page.set_viewport_size(viewport)
    open_chat(axe_page, live_server)
    page.route("**/api/converse", lambda route: route.continue_(url=slow_stream.url))
    ask(page, "Count slowly")
    stop = page.get_by_role("button", name="Stop", exact=True)
    expect(stop).to_be_visible()

    # Enter while it streams: nothing is sent, the text stays, and the page says why.
    prompt = box(page)
    prompt.fill("And then?")
    prompt.press("Enter")
    note = page.locator("#prompt-note")
    expect(note).to_have_text("Wait for the answer, or Stop it")
    expect(note).to_have_attribute("aria-live", "polite")
    expect(prompt).to_have_value("And then?")
    expect(page.locator("li[data-role=user]")).to_have_count(1)
    axe_clean(page)
    stop.click()
    expect(note).to_have_text("")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()

    # Escape while editing ends the edit and clears the box: the next Enter sends no duplicate.
    page.get_by_role("button", name="Edit message").first.click()
    expect(prompt).to_have_value("Count slowly")
    expect(page.locator("#editing")).to_be_visible()
    prompt.press("Escape")
    expect(page.locator("#editing")).to_be_hidden()
    expect(prompt).to_have_value("")
    prompt.press("Enter")
    expect(page.locator("li[data-role=user]")).to_have_count(1)
    assert axe_page.errors == []
