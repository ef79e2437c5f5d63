"""The chat page in real headless Chromium against the real server and default model."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect

from client.errors import TOO_LONG
from tests.browser.helpers import RecordedPage, assert_only_loopback, open_chat
from wire.types import MAX_TEXT


def test_chat_streams_an_answer_from_the_model(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    ready_s = open_chat(recorded_page, live_server)
    print(f"page ready in {ready_s:.2f} s (cold, fresh context)")

    box = page.get_by_role("textbox", name="Message")
    box.fill("What is the capital of Italy?")
    box.press("Enter")

    user = page.locator("li[data-role=user]")
    expect(user).to_have_count(1)
    expect(user.first.locator("[data-part=bubble]")).to_have_text("What is the capital of Italy?")
    expect(box).to_have_value("")
    expect(box).to_be_focused()

    model = page.locator("li[data-role=model]")
    expect(model).to_have_count(1)
    expect(model.first).to_have_attribute("data-status", "done", timeout=60_000)
    answer = model.first.locator("[data-part=bubble]").inner_text()
    assert answer.strip() and answer != "...", f"model bubble has no streamed text: {answer!r}"
    expect(model.first).to_contain_text("tokens")  # the stats line under the answer
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)
    assert any(urlsplit(u).path == "/api/converse" for u in recorded_page.requests)


def test_text_is_shown_as_text_and_shift_enter_keeps_a_newline(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Say <b>hi</b>")
    box.press("Shift+Enter")
    box.press_sequentially("twice")
    expect(box).to_have_value("Say <b>hi</b>\ntwice")  # Shift+Enter did not send
    expect(page.locator("li[data-role=user]")).to_have_count(0)

    box.press("Enter")
    user = page.locator("li[data-role=user] [data-part=bubble]").first
    expect(user).to_have_text("Say <b>hi</b>\ntwice")
    expect(user.locator("b")).to_have_count(0)  # no HTML was interpreted
    # Only the request matters here; how long this base model rambles on does not.
    model = page.locator("li[data-role=model]").first
    expect(model).not_to_have_attribute("data-status", "pending", timeout=60_000)
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)


def test_a_message_too_long_to_send_is_refused_before_it_leaves(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    box = page.get_by_role("textbox", name="Message")
    box.fill("x" * (MAX_TEXT + 1))  # longer than the protocol allows: the server would refuse it
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#attach-note")).to_have_text(TOO_LONG)
    expect(page.locator("li[data-role]")).to_have_count(0)  # nothing sent, no error bubble
    assert len(box.input_value()) == MAX_TEXT + 1  # nothing typed is lost
    assert not [url for url in recorded_page.requests if url.endswith("/api/converse")]
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert recorded_page.errors == []
