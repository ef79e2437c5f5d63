"""Answers survive a reload, in real Chromium against the real server and model: the reloaded page
reads the same answer again by its id (server.answers), and Stop cancels it on the server at once.

The long answer is a count the model keeps going on (greedy, no repeat penalty), so that it is
still coming when the page reloads or Stop is pressed.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import (
    ANSWER_S,
    HeldRuntime,
    RecordedPage,
    ask,
    assert_only_loopback,
    last_answer,
    open_chat,
    set_settings,
)
from tests.harness import COUNT, idle, metrics, wait_until
from wire.routes import CONVERSE

LONG = {"Temperature": "0", "Repeat penalty": "1.0"}


def watch_requests(page: Any) -> list[tuple[str, str]]:
    """(method, path) of every request the page makes from now on."""
    seen: list[tuple[str, str]] = []
    page.on("request", lambda request: seen.append((request.method, re.sub(r"^\w+://[^/]+", "", request.url))))
    return seen


def bubble_text(page: Any) -> str:
    return " ".join(last_answer(page).locator("[data-part=bubble]").inner_text().split())


def test_a_reload_mid_answer_resumes_the_same_answer(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(page, {**LONG, "Max tokens": "150"})
    requests = watch_requests(page)
    ask(page, COUNT)
    bubble = last_answer(page).locator("[data-part=bubble]")
    expect(bubble).to_contain_text(re.compile(r"\d+, \d+, \d+,"), timeout=ANSWER_S)
    # the store's writes in flight are done (the answer's id was written the moment it came)
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    seen = bubble_text(page)
    asked = [r for r in requests if r == ("POST", CONVERSE.path)]
    assert len(asked) == 1

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=3 * ANSWER_S)
    expect(last_answer(page).locator("[data-part=note]")).to_contain_text("hit the max tokens limit")
    assert bubble_text(page).startswith(seen) and len(bubble_text(page)) > len(seen)
    assert [r for r in requests if r == ("POST", CONVERSE.path)] == asked  # read again, never asked again
    assert any(method == "GET" and path.startswith("/api/answers/") for method, path in requests)
    assert "Interrupted" not in last_answer(page).inner_text()
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)


def test_a_message_sent_while_the_page_loads_waits_in_the_box_while_the_answer_resumes(
    recorded_page: RecordedPage, live_server: str
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(page, {**LONG, "Max tokens": "150"})
    ask(page, COUNT)
    expect(last_answer(page).locator("[data-part=bubble]")).to_contain_text(re.compile(r"\d+, \d+,"), timeout=ANSWER_S)
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")

    held = HeldRuntime(page)  # Python cannot start until released
    page.reload(wait_until="domcontentloaded")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_disabled()
    held.release()
    expect(box).to_be_editable(timeout=ANSWER_S)  # at our first line: the app is still loading, or just ready
    box.fill("Typed while it loaded")
    box.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    # The chat's answer is on its way again: the message cannot go now, so it is back in the box, not lost.
    expect(box).to_have_value("Typed while it loaded")
    expect(page.locator("li[data-role=user]")).to_have_count(1)
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=3 * ANSWER_S)
    assert recorded_page.errors == []


def test_stop_cancels_the_answer_on_the_server_at_once(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(page, {**LONG, "Max tokens": "2000"})
    wait_until(lambda: idle(live_server))
    cancelled = metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"]
    ask(page, COUNT)
    expect(last_answer(page).locator("[data-part=bubble]")).to_contain_text(re.compile(r"\d+, \d+,"), timeout=ANSWER_S)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/stop")) as stopping:
        page.get_by_role("button", name="Stop").click()
    assert "/api/answers/" in stopping.value.url
    expect(last_answer(page)).to_have_attribute("data-status", "stopped")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    # Freed well within the grace period a page that merely went away would get (ANSWER_GRACE_S, 30 s).
    wait_until(lambda: idle(live_server), timeout=15)
    assert metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"] == cancelled + 1
    assert recorded_page.errors == []
