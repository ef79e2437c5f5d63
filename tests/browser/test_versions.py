"""Versions in real headless Chromium against the real server and model: Regenerate and Edit
keep the earlier versions, the switcher moves between them, and they survive a reload."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import ANSWER_S, RecordedPage, ask, last_answer, open_chat, set_settings, wait_answer


def bubble_text(row: Any) -> str:
    return str(row.locator("[data-part=bubble]").inner_text())


def test_regenerate_and_edit_keep_versions_across_a_reload(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    set_settings(page, {"Max tokens": "16"})
    ask(page, "What is the capital of Spain?")
    first = bubble_text(wait_answer(page))
    asked: list[Any] = []
    page.on("request", lambda r: asked.append(r.post_data_json) if r.url.endswith("/api/converse") else None)

    page.get_by_role("button", name="Regenerate").click()
    answer = wait_answer(page)
    expect(page.locator("li[data-role]")).to_have_count(2)
    expect(answer.locator("[data-part=version]")).to_have_text("2/2")
    expect(answer.get_by_role("button", name="Next version")).to_be_disabled()
    answer.get_by_role("button", name="Previous version").click()
    expect(answer.locator("[data-part=version]")).to_have_text("1/2")
    assert bubble_text(answer) == first
    expect(answer.get_by_role("button", name="Previous version")).to_be_disabled()

    # The next question is asked on the visible branch: the first answer.
    ask(page, "And of Portugal?")
    wait_answer(page)
    # (compared word by word: the bubble shows Markdown, where a line break inside a paragraph is a space)
    history = [" ".join(m["text"].split()) for m in asked[-1]["conversation"]["messages"]]
    assert history == ["What is the capital of Spain?", " ".join(first.split()), "And of Portugal?"]

    # Edit forks at the user's message; the old message and all after it stay as version 1.
    page.locator("li[data-role=user]").first.get_by_role("button", name="Edit message").click()
    box = page.get_by_role("textbox", name="Message")
    box.fill("What is the capital of Norway?")
    box.press("Enter")
    wait_answer(page)
    expect(page.locator("li[data-role]")).to_have_count(2)
    question = page.locator("li[data-role=user]").first
    expect(question.locator("[data-part=version]")).to_have_text("2/2")
    assert [m["text"] for m in asked[-1]["conversation"]["messages"]] == ["What is the capital of Norway?"]

    # a finished answer is written at once; wait until the browser's store holds it
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    question = page.locator("li[data-role=user]").first
    expect(question.locator("[data-part=bubble]")).to_have_text("What is the capital of Norway?")
    expect(question.locator("[data-part=version]")).to_have_text("2/2")
    question.get_by_role("button", name="Previous version").click()
    expect(page.locator("li[data-role]")).to_have_count(4)
    expect(question.locator("[data-part=bubble]")).to_have_text("What is the capital of Spain?")
    answer = page.locator("li[data-role=model]").first
    expect(answer.locator("[data-part=version]")).to_have_text("1/2")
    assert bubble_text(answer) == first
    answer.get_by_role("button", name="Next version").click()
    expect(answer.locator("[data-part=version]")).to_have_text("2/2")
    expect(last_answer(page)).to_have_attribute("data-status", "done")
    assert recorded_page.errors == []
