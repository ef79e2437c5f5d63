"""The context gauge in real headless Chromium, on the real server and default model with a 512-token
context, so that a few long questions make the server drop the oldest turns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from client.gauge import DROPPED_LABEL
from tests.browser.helpers import RecordedPage, ask, open_chat, set_settings, wait_answer
from tests.harness import start_server, stop_server

N_CTX = 512
# About a hundred tokens: four of these with their answers overflow 512.
QUESTION = "Please tell me, in one short sentence, what you think about " + ", ".join(
    f"the {word} river" for word in ("red", "green", "blue", "yellow", "brown", "black", "white", "grey") * 3
)


@pytest.fixture(scope="module")
def small_server() -> Iterator[str]:
    proc, url = start_server("--n-ctx", str(N_CTX), env={"MODEL_PATH": ""})
    yield url
    stop_server(proc)


def used_tokens(page: Any) -> int:
    text = page.locator("#context-text").text_content() or ""
    match = re.fullmatch(r"([\d,]+) / 512 tokens", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def test_the_gauge_counts_the_context_and_marks_dropped_turns(recorded_page: RecordedPage, small_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, small_server)
    set_settings(page, {"Max tokens": "16"})
    gauge = page.get_by_role("meter", name="Context")
    expect(gauge).to_be_hidden()  # nothing counted yet

    ask(page, f"1. {QUESTION}")
    wait_answer(page)
    expect(gauge).to_be_visible()
    expect(page.locator("#context-text")).to_have_text(re.compile(r"^[\d,]+ / 512 tokens$"))
    first = used_tokens(page)
    assert 0 < first <= N_CTX
    assert gauge.get_attribute("max") == str(N_CTX) and int(gauge.get_attribute("value") or 0) == first
    expect(page.locator("li[data-dropped=true]")).to_have_count(0)

    for n in range(2, 9):
        ask(page, f"{n}. {QUESTION}")
        wait_answer(page)
        if page.locator("li[data-dropped=true]").count():
            break
    dropped = page.locator("li[data-dropped=true]")
    assert dropped.count() > 0, "the server never dropped a turn"
    assert 0 < used_tokens(page) <= N_CTX
    # The dropped ones are the oldest, each labelled for everyone (not by colour alone).
    rows = page.locator("li[data-index]")
    assert rows.first.get_attribute("data-dropped") == "true"
    assert rows.last.get_attribute("data-dropped") == "false"
    expect(dropped.first.locator("[data-part=note]")).to_contain_text(DROPPED_LABEL)
    assert "left out to fit the context" in (wait_answer(page).locator("[data-part=note]").text_content() or "")
    assert recorded_page.errors == []
