"""Errors in plain words, recovery by itself, Continue, and import that forgives, in real Chromium
against the real server and model.

The server is killed mid-answer (SIGKILL: nothing is said to the page) and started again on the
same port; the page finds it again on its own. The long answer is a count the model keeps going
on (greedy, no repeat penalty), so that it is still coming when the server goes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from client import library as lib
from client.errors import CUT_OFF, NOT_OURS
from client.state import Chat, Turn
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    RecordedPage,
    ask,
    assert_only_loopback,
    chat_rows,
    last_answer,
    open_chat,
    set_settings,
    wait_answer,
)
from tests.harness import COUNT, Popen, free_port, spawn, stop_server

LONG = {"Temperature": "0", "Repeat penalty": "1.0"}
ENV = {"MODEL_PATH": "", "ENGINE": "auto"}


def serve(port: int) -> Popen:
    return spawn([sys.executable, "-m", "server", "--port", str(port)], f"http://127.0.0.1:{port}/health", ENV)


@pytest.fixture
def own_server() -> Iterator[tuple[list[Popen], str]]:
    """A server of this test's own, which it may kill and start again on the same port."""
    port = free_port()
    procs = [serve(port)]
    yield procs, f"http://127.0.0.1:{port}"
    for proc in procs:
        stop_server(proc)


def bubble_text(page: Any) -> str:
    return " ".join(last_answer(page).locator("[data-part=bubble]").inner_text().split())


def test_a_killed_server_is_found_again_and_continue_finishes_the_cut_answer(
    recorded_page: RecordedPage, own_server: tuple[list[Popen], str]
) -> None:
    procs, url = own_server
    page = recorded_page.page
    open_chat(recorded_page, url)
    set_settings(page, {**LONG, "Max tokens": "80"})
    ask(page, COUNT)
    expect(last_answer(page).locator("[data-part=bubble]")).to_contain_text(re.compile(r"\d+, \d+,"), timeout=ANSWER_S)
    procs[0].kill()
    procs[0].wait()

    banner = page.get_by_role("alert")
    expect(banner).to_be_visible(timeout=10_000)
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "stopped", timeout=10_000)
    expect(answer.locator("[data-part=note]")).to_have_text(CUT_OFF)
    seen = bubble_text(page)
    assert re.search(r"\d+, \d+,", seen)
    for leak in ("TypeError", "Error", "network error"):
        assert leak not in answer.inner_text()
    assert "bg-red" not in (answer.locator("[data-part=bubble]").get_attribute("class") or "")
    continue_button = answer.get_by_role("button", name="Continue this answer")
    expect(continue_button).to_be_visible()

    procs.append(serve(int(url.rsplit(":", 1)[1])))
    expect(banner).to_be_hidden(timeout=40_000)  # found again by itself, nobody pressed Retry

    continue_button.click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    after = bubble_text(page)
    assert after.startswith(seen) and len(after) > len(seen)
    expect(page.locator("li[data-role=model]")).to_have_count(1)  # the same answer, not a new one
    assert_only_loopback(recorded_page)


def test_continue_after_a_length_stop_joins_the_same_answer(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(page, {**LONG, "Max tokens": "12"})
    ask(page, COUNT)
    answer = wait_answer(page)
    expect(answer.locator("[data-part=note]")).to_contain_text("hit the max tokens limit")
    seen = bubble_text(page)
    answer.get_by_role("button", name="Continue this answer").click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    expect(last_answer(page).locator("[data-part=bubble]")).not_to_have_text(seen)
    after = bubble_text(page)
    assert after.startswith(seen) and len(after) > len(seen)
    assert re.search(r"\d+, \d+, \d+,", after[len(seen) - 4 :])  # the count goes on from where it stopped
    expect(page.locator("li[data-role=model]")).to_have_count(1)
    assert recorded_page.errors == []


def test_import_markdown_a_wrong_file_and_the_same_export_twice(
    axe_page: RecordedPage, live_server: str, tmp_path: Path
) -> None:
    recorded_page = axe_page
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    chats = chat_rows(page)
    picker = page.get_by_label("Import chat (JSON or Markdown)")

    chat = Chat(id="md", title="Imported from Markdown", turns=(Turn(True, "Hi there"), Turn(False, "Hello **you**")))
    markdown = tmp_path / "chat.md"
    markdown.write_text(lib.export_markdown(chat))
    picker.set_input_files(str(markdown))
    expect(chats).to_have_count(1)
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text(["Hi there"])
    expect(last_answer(page).locator("[data-part=bubble]")).to_contain_text("Hello you")

    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"name": "not a chat"}')
    picker.set_input_files(str(wrong))
    expect(page.locator("#import-note")).to_have_text(NOT_OURS)
    expect(chats).to_have_count(1)

    exported = tmp_path / "chat.json"
    exported.write_text(lib.export_json(Chat(id="j1", title="From JSON", turns=(Turn(True, "Q"), Turn(False, "A")))))
    picker.set_input_files(str(exported))
    expect(chats).to_have_count(2)
    expect(page.locator("#import-note")).to_be_empty()
    picker.set_input_files(str(exported))  # the same export again
    dialog = page.get_by_role("dialog", name="Already in your chats")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("“From JSON” is already in your chats")
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []
    dialog.get_by_role("button", name="Keep both").click()
    expect(dialog).to_be_hidden()
    expect(chats).to_have_count(3)
    picker.set_input_files(str(exported))
    dialog.get_by_role("button", name="Replace").click()
    expect(chats).to_have_count(3)  # the chat of that id is replaced; the copy kept before stays
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)
