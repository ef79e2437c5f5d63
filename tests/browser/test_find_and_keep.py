"""Find and keep, in real headless Chromium against the real server and model: the search box
(Ctrl+K focuses it) filters the chats by title and message text, a pinned chat is listed first
and stays pinned after a reload, and all chats export to one file that imports again.
"""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import (
    ANSWER_S,
    RecordedPage,
    assert_only_loopback,
    chat_action,
    chat_rows,
    open_chat,
    two_chats,
    wait_answer,
)


def test_search_pin_and_export_all(recorded_page: RecordedPage, live_server: str, tmp_path: Any) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    two_chats(page, "Tell me about apples", "Tell me about bananas", max_tokens=8)
    wait_answer(page)

    chats = chat_rows(page)
    expect(chats).to_have_count(2)
    expect(chats.first).to_contain_text("bananas")  # newest first

    search = page.get_by_role("searchbox", name="Search chats (Ctrl+K)")
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.press("Control+k")
    expect(search).to_be_focused()
    page.keyboard.type("APPLES")
    expect(chats).to_have_count(1)
    expect(chats.first).to_contain_text("apples")
    search.fill("no such words anywhere")
    expect(chats).to_have_count(0)
    expect(page.locator("#chat-list")).to_have_text("No chats match the search.")
    search.fill("")
    expect(chats).to_have_count(2)

    chat_action(page, "Tell me about apples", "Pin")
    expect(chats.first).to_contain_text("apples")  # pinned first
    expect(page.get_by_role("list", name="Pinned")).to_contain_text("apples")
    expect(chats.first).to_have_attribute("data-pinned", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(chats).to_have_count(2)
    expect(chats.first).to_contain_text("apples")  # still pinned
    page.get_by_role("button", name="Actions for Tell me about apples").click()
    expect(page.get_by_role("menuitem", name="Unpin")).to_be_visible()
    page.keyboard.press("Escape")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export all chats (JSON)").click()
    exported = tmp_path / "all.json"
    download.value.save_as(exported)
    data = json.loads(exported.read_text())
    assert [c["title"] for c in data["chats"]] == ["Tell me about apples", "Tell me about bananas"]
    assert [c["pinned"] for c in data["chats"]] == [True, False]
    page.get_by_label("Import chat (JSON or Markdown)").set_input_files(str(exported))
    page.get_by_role("dialog", name="Already in your chats").get_by_role("button", name="Keep both").click()
    expect(chats).to_have_count(4)  # both came in at once
    expect(page.get_by_role("list", name="Pinned").locator("li")).to_have_count(2)
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)
