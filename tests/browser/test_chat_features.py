"""The chat app's features in real headless Chromium: chats that last, control, Markdown, settings,
stats, feedback, API key. Against the real server unless a test needs an answer the real
model cannot be made to give (Markdown, XSS payloads from the model, a never-ending stream):
those answers come from `page.route` or the SlowStream stand-in, and say so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from client.errors import CONNECTION_LOST
from tests.browser.helpers import (
    ANSWER_S,
    RecordedPage,
    ask,
    assert_only_loopback,
    chat_action,
    chat_rows,
    done,
    export_chat,
    last_answer,
    open_chat,
    set_settings,
    sse,
    two_chats,
    wait_answer,
)
from tests.fakes import SlowStream

LIMITS = {"max_tokens": "24"}  # the base model sometimes rambles: keep real answers short


def fake_answer(page: Any, *events: tuple[str, dict[str, Any]]) -> None:
    """Answer /api/converse with these SSE events instead of the model."""
    page.route(
        "**/api/converse",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=sse(*events)),
    )


def test_chats_survive_reload_new_chat_rename_and_delete(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    two_chats(page, "First chat question", "Second chat question", max_tokens=24)
    wait_answer(page)

    chats = chat_rows(page)
    expect(chats).to_have_count(2)
    expect(chats.first).to_contain_text("Second chat question")  # newest first

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(chats).to_have_count(2)
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text(
        ["Second chat question"]
    )  # the open chat
    page.get_by_role("button", name="First chat question", exact=True).click()
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text(["First chat question"])
    expect(page.get_by_role("dialog", name="Settings")).to_be_hidden()
    page.get_by_role("button", name="Settings", exact=True).click()  # settings were saved too
    expect(page.get_by_label("Max tokens", exact=True)).to_have_value("24")
    page.get_by_role("button", name="Cancel").click()

    chat_action(page, "First chat question", "Rename")
    page.get_by_role("textbox", name="Chat name").fill("Renamed chat")
    page.keyboard.press("Enter")
    expect(chats.filter(has_text="Renamed chat")).to_have_count(1)
    asking = page.get_by_role("dialog", name="Delete this chat?")
    chat_action(page, "Renamed chat", "Delete")
    expect(asking).to_contain_text("“Renamed chat”")
    asking.get_by_role("button", name="Cancel").click()  # Cancel keeps it
    expect(chats).to_have_count(2)
    chat_action(page, "Renamed chat", "Delete")
    asking.get_by_role("button", name="Delete").click()
    expect(chats).to_have_count(1)
    # the browser's store finishes its writes before the page goes (a reload sooner could lose them)
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(chats).to_have_count(1)
    expect(chats.first).to_contain_text("Second chat question")
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)


def test_stop_aborts_the_stream_and_a_reload_mid_answer_keeps_it(
    recorded_page: RecordedPage, live_server: str, slow_stream: SlowStream
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    # A stream that never ends (the real model is too quick to stop by hand).
    page.route("**/api/converse", lambda route: route.continue_(url=slow_stream.url))
    ask(page, "Tell me everything")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)  # Send became Stop
    expect(last_answer(page)).to_contain_text("tick tick")
    box = page.get_by_role("textbox", name="Message")
    box.fill("sneaky second message")
    box.press("Enter")  # cannot send while streaming
    expect(page.locator("li[data-role=user]")).to_have_count(1)

    stop.click()
    expect(last_answer(page)).to_have_attribute("data-status", "stopped")
    assert slow_stream.disconnected.wait(5), "the request was not aborted"
    text = last_answer(page).locator("[data-part=bubble]").inner_text()
    # the request is gone (the server saw it close), so nothing more can arrive: one more
    # animation frame of the page shows the same text
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")
    assert last_answer(page).locator("[data-part=bubble]").inner_text() == text
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # Escape stops too; a reload mid-answer keeps the partial answer, marked interrupted.
    page.get_by_role("button", name="Regenerate").click()
    expect(last_answer(page)).to_have_attribute("data-status", "streaming")
    page.keyboard.press("Escape")
    expect(last_answer(page)).to_have_attribute("data-status", "stopped")
    page.get_by_role("button", name="Regenerate").click()
    expect(last_answer(page)).to_contain_text("tick tick tick tick tick tick tick tick tick tick tick tick tick tick")
    # The save is throttled while an answer streams: wait for one begun after this text showed, and written.
    begun = page.evaluate("() => Number(document.body.dataset.writes || 0)")
    page.wait_for_function(
        "begun => Number(document.body.dataset.writes || 0) > begun && !document.body.dataset.saving", arg=begun
    )
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(last_answer(page)).to_have_attribute("data-status", "stopped")
    expect(last_answer(page)).to_contain_text("tick tick")
    expect(last_answer(page)).to_contain_text("Interrupted")
    assert recorded_page.errors == []


def test_regenerate_edit_and_copy(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    recorded_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(recorded_page, live_server)
    set_settings(page, {"Max tokens": "16"})
    ask(page, "What is the capital of Spain?")
    wait_answer(page)
    ask(page, "And of Portugal?")
    wait_answer(page)
    asked = []
    page.on("request", lambda r: asked.append(r.post_data_json) if r.url.endswith("/api/converse") else None)

    page.get_by_role("button", name="Regenerate").click()
    wait_answer(page)
    expect(page.locator("li[data-role]")).to_have_count(4)  # the answer was replaced, not added
    history = [m["text"] for m in asked[-1]["conversation"]["messages"]]
    assert history[0] == "What is the capital of Spain?" and history[-1] == "And of Portugal?" and len(history) == 3

    page.locator("li[data-role=user]").first.get_by_role("button", name="Edit message").click()
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_have_value("What is the capital of Spain?")
    box.fill("What is the capital of Norway?")
    box.press("Enter")
    wait_answer(page)
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text(["What is the capital of Norway?"])
    expect(page.locator("li[data-role]")).to_have_count(2)
    assert [m["text"] for m in asked[-1]["conversation"]["messages"]] == ["What is the capital of Norway?"]

    copy = page.locator("li[data-role=user]").first.get_by_role("button", name="Copy message")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "What is the capital of Norway?"
    assert recorded_page.errors == []


XSS = [
    "<script>window.__xss = 1</script>",
    "<img src=x onerror=window.__xss=2>",
    "<svg onload=window.__xss=3>",
    '<a href="javascript:window.__xss=4">click</a>',
    "[click](javascript:window.__xss=5)",
    '<iframe src="javascript:window.__xss=6"></iframe>',
    "<details open ontoggle=window.__xss=7>",
    '"><b onmouseover=window.__xss=8>x</b>',
    "[x](JaVaScRiPt:window.__xss=9) ![i](x onerror=window.__xss=10)",
    "`<b>code</b>` <style>body{display:none}</style>",
]


def test_xss_payloads_from_user_and_model_show_as_text(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_chat(recorded_page, live_server)
    expect(page.locator("body")).to_have_attribute("data-markdown", "ready", timeout=ANSWER_S)
    payload = "\n\n".join(XSS)
    # The model would never say these: the answer comes from a stand-in.
    fake_answer(page, ("token", {"text": payload[:40]}), ("token", {"text": payload[40:]}), done())
    ask(page, payload)
    answer = wait_answer(page)
    user = page.locator("li[data-role=user] [data-part=bubble]").first
    expect(user).to_have_text(payload)
    for text in ("<script>window.__xss = 1</script>", "<img src=x onerror=window.__xss=2>", "<b>code</b>"):
        expect(answer).to_contain_text(text)
    page.locator("#messages a, #messages b").all()  # hover/click anything clickable that exists
    for link in page.locator("#messages a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith(("http", "/", "#", "mailto")), href
    for tag in ("script", "img", "svg", "iframe", "details", "style", "b"):
        assert page.locator(f"#messages {tag}").count() == 0, tag
    page.mouse.move(10, 10)  # hover handlers run as the move is dispatched
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")
    assert page.evaluate("window.__xss") is None and dialogs == []
    assert recorded_page.errors == []


def test_markdown_answer_with_table_code_highlighting_and_copy(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    recorded_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(recorded_page, live_server)
    expect(page.locator("body")).to_have_attribute("data-markdown", "ready", timeout=ANSWER_S)
    markdown = (
        "## Fruit\n\n- apple\n- **pear**\n\n| name | qty |\n|---|--:|\n| fig | 3 |\n\n"
        "```python\ndef f():\n    return 'x'  # done\n```\n\nSee [docs](https://example.org)."
    )
    fake_answer(page, ("token", {"text": markdown}), done())  # a real model's Markdown, without the model
    ask(page, "Show me markdown")
    answer = wait_answer(page)
    expect(answer.get_by_role("heading", name="Fruit", level=2)).to_be_visible()
    expect(answer.locator("ul > li")).to_have_text(["apple", "pear"])
    expect(answer.locator("strong")).to_have_text("pear")
    expect(answer.get_by_role("table")).to_contain_text("fig")
    expect(answer.locator("pre code span", has_text="def")).to_have_count(1)  # highlighted keyword
    expect(answer.get_by_role("link", name="docs")).to_have_attribute("href", "https://example.org")
    answer.get_by_role("button", name="Copy code").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "def f():\n    return 'x'  # done\n"
    expect(page.locator("li[data-role=user] [data-part=bubble]").first).to_have_text("Show me markdown")
    assert recorded_page.errors == []


def test_settings_reach_the_server_and_reset(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(
        page,
        {
            "System prompt": "You are terse.",
            "Temperature": "0.3",
            "Top-p": "0.9",
            "Top-k": "20",
            "Repeat penalty": "1.1",
            "Max tokens": "3",
            "Seed": "42",
        },
    )
    with page.expect_request("**/api/converse") as sent:
        ask(page, "Hello there")
    params = sent.value.post_data_json["params"]
    assert params == {
        "system": "You are terse.",
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 20,
        "repeat_penalty": 1.1,
        "max_tokens": 3,
        "seed": 42,
    }
    answer = wait_answer(page)
    note = answer.locator("[data-part=note]")
    expect(note).to_contain_text("tokens")  # stats from the real server's done event
    stats = re.search(r"(\d+) tokens", note.inner_text())
    assert stats is not None
    tokens = int(stats[1])
    assert 1 <= tokens <= 3  # the server honoured max_tokens

    page.get_by_role("button", name="Settings", exact=True).click()
    page.get_by_label("Temperature", exact=True).fill("7")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Temperature must be between 0.0 and 2.0")).to_be_visible()
    page.get_by_role("button", name="Reset to defaults").click()
    with page.expect_request("**/api/converse") as sent:
        ask(page, "Again")
    assert sent.value.post_data_json["params"] == {}
    wait_answer(page)
    assert recorded_page.errors == []


def test_settings_show_the_prompt_template_the_server_reports(recorded_page: RecordedPage, live_server: str) -> None:
    """A server that names its template in /health (stood in for by `page.route`) gets a line in Settings."""
    page = recorded_page.page
    health = {
        "status": "ok", "engine": "llama-cpp", "model": "m", "model_path": "/m.gguf",
        "template": {"name": "gemma3 chat template", "source": "gguf"},
    }
    page.route("**/health", lambda route: route.fulfill(status=200, json=health))
    open_chat(recorded_page, live_server)
    page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog.get_by_text("Prompt template: gemma3 chat template (gguf)")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    assert recorded_page.errors == []


def test_stats_truncation_notice_and_queue_position(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    # No long chat needed; the model that wrote the answer comes first.
    fake_answer(page, ("token", {"text": "Hi"}), done(truncated_turns=2, stop_reason="length", model="m.gguf"))
    ask(page, "Hello")
    note = wait_answer(page).locator("[data-part=note]")
    expect(note).to_have_text(
        "m.gguf · 5 tokens · 42.0 tok/s · first token 0.12 s · hit the max tokens limit"
        " · 2 old messages left out to fit the context"
    )
    assert recorded_page.errors == []


def test_queue_position_shows_until_the_first_token(
    recorded_page: RecordedPage, live_server: str, slow_stream: SlowStream
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    page.route("**/api/converse", lambda route: route.continue_(url=slow_stream.url))
    ask(page, "Hello")
    expect(last_answer(page)).to_contain_text("Queued: position 3")
    expect(last_answer(page)).to_contain_text("tick")
    expect(last_answer(page)).not_to_contain_text("Queued")
    page.get_by_role("button", name="Stop").click()
    assert recorded_page.errors == []


def test_banner_when_the_server_is_unreachable_and_retry(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    refused: list[str] = []

    def down(route: Any) -> None:
        refused.append(route.request.url)
        route.abort()

    page.route("**/health", down)
    page.route("**/api/converse", lambda route: route.abort())
    open_chat(recorded_page, live_server)
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Cannot reach the server")
    # The page looks again by itself after 1 s, then 2 s, then 4 s: once it has looked three times,
    # Retry is clicked within the 4 s gap, so it is Retry, not the page's own look, that clears the banner.
    for _ in range(300):  # route handlers run only while Playwright waits, so wait in the page
        if len(refused) >= 3:
            break
        page.wait_for_timeout(100)
    assert len(refused) >= 3, refused
    page.unroute("**/health")
    page.get_by_role("button", name="Retry").click()
    expect(banner).to_be_hidden()
    ask(page, "Anyone there?")
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "error")
    expect(answer).to_contain_text(CONNECTION_LOST)  # in words, not an exception's text
    expect(banner).to_be_hidden()  # the page looked again at once: /health answers, so there is no banner


def test_api_key_is_asked_for_kept_and_sent(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    seen: list[str | None] = []

    def guard(route: Any) -> None:  # the server's API_KEY check, in front of the real server
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth != "Bearer right-key":
            body = json.dumps({"error": {"type": "unauthorized", "message": "missing or wrong API key"}})
            route.fulfill(status=401, content_type="application/json", body=body)
        else:
            route.continue_()

    page.route("**/api/converse", guard)
    open_chat(recorded_page, live_server)
    set_settings(page, {"Max tokens": "8"})
    ask(page, "Hi")
    dialog = page.get_by_role("dialog", name="API key needed")
    expect(dialog).to_be_visible()
    dialog.get_by_label("API key").fill("wrong-key")
    dialog.get_by_role("button", name="Use key").click()
    retry = page.get_by_role("dialog", name="That API key was refused")
    expect(retry).to_be_visible()
    retry.get_by_label("API key").fill("right-key")
    retry.get_by_role("button", name="Use key").click()
    wait_answer(page)
    assert seen == [None, "Bearer wrong-key", "Bearer right-key"]
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    ask(page, "Still me")
    wait_answer(page)
    assert seen[-1] == "Bearer right-key"  # kept in the browser, no second question
    assert recorded_page.errors == []


def test_narrow_screen_export_and_import(recorded_page: RecordedPage, live_server: str, tmp_path: Any) -> None:
    page = recorded_page.page
    page.set_viewport_size({"width": 360, "height": 640})
    open_chat(recorded_page, live_server)
    fake_answer(page, ("token", {"text": "**Paris**"}), done())
    ask(page, "Capital of France?")
    wait_answer(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    expect(page.get_by_role("navigation", name="Chats")).to_be_hidden()
    page.get_by_role("button", name="Chats", exact=True).click()
    expect(page.get_by_role("button", name="New chat")).to_be_visible()
    page.get_by_role("button", name="Close chats").click()
    expect(page.get_by_role("navigation", name="Chats")).to_be_hidden()

    with page.expect_download() as md:
        export_chat(page, "Export as Markdown (.md)")
    assert md.value.suggested_filename == "capital-of-france.md"
    text = Path(md.value.path()).read_text()
    assert "Capital of France?" in text and "**Paris**" in text
    with page.expect_download() as js:
        export_chat(page, "Export as JSON (.json)")
    exported = tmp_path / "chat.json"
    js.value.save_as(exported)
    assert json.loads(exported.read_text())["turns"][1]["text"] == "**Paris**"

    page.get_by_role("button", name="Chats", exact=True).click()
    page.get_by_label("Import chat (JSON or Markdown)").set_input_files(str(exported))
    page.get_by_role("dialog", name="Already in your chats").get_by_role("button", name="Keep both").click()
    expect(chat_rows(page)).to_have_count(2)
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text(["Capital of France?"])
    assert recorded_page.errors == []
