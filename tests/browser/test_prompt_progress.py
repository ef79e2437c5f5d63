"""A long attachment in real headless Chromium, on the real server and default model with one
slot: the answer's bubble shows the prompt being read (a label and a filling `<progress>` bar in
place of the placeholder), Stop while it fills ends the answer, and the next message (in a new
chat) is answered long before the whole prompt could have been read."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    RecordedPage,
    ask,
    assert_only_loopback,
    file,
    last_answer,
    open_chat,
    pending,
    set_settings,
    wait_answer,
)
from tests.harness import start_server, stop_server

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "again"]
READ_S = 300  # the whole prompt, on a slow machine


@pytest.fixture(scope="module")
def one_slot() -> Iterator[str]:
    proc, url = start_server(env={"MODEL_PATH": "", "PARALLEL": "1", "N_CTX": "4096", "KV_POOL": "4096"})
    yield url
    stop_server(proc)


def bar_value(page: Any, least: float) -> tuple[float, float, float]:
    """Once the reading bar passes `least`: its value, its max, and when (time.perf_counter)."""
    handle = page.wait_for_function(
        """least => {
            const bar = [...document.querySelectorAll('progress[data-part=reading]')].pop();
            return bar && bar.value > least ? [bar.value, bar.max] : null;
        }""",
        arg=least, timeout=READ_S * 1000,
    )
    value, top = handle.json_value()
    return float(value), float(top), time.perf_counter()


def test_a_long_attachment_shows_its_reading_and_stop_frees_the_model(
    recorded_page: RecordedPage, one_slot: str
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, one_slot)
    set_settings(page, {"Max tokens": "16"})
    # about 3,200 tokens that no earlier prompt shares (no cache shortens their reading)
    pick = random.Random(secrets.token_bytes(8)).choice
    words = " ".join(pick(WORDS) for _ in range(3_200))
    page.set_input_files("#attach-file", [file("notes.txt", words)])
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.txt"], timeout=60_000)
    ask(page, "Summarise this file.")
    answer = last_answer(page)
    bubble = answer.locator("[data-part=bubble]")
    first, total, at_first = bar_value(page, 0)
    expect(bubble).to_contain_text("Reading the conversation…")
    expect(bubble).to_contain_text(f"/ {int(total):,} tokens")
    later, _, at_later = bar_value(page, first)  # it fills
    whole_s = (at_later - at_first) * total / (later - first)
    page.get_by_role("button", name="Stop").click()
    stopped = time.perf_counter()
    expect(answer).to_have_attribute("data-status", "stopped")
    expect(page.locator("progress[data-part=reading]")).to_have_count(0)
    page.get_by_role("button", name="New chat").click()  # a chat of its own: nothing long to read again
    ask(page, "What is the capital of France?")
    wait_answer(page)
    waited = time.perf_counter() - stopped
    assert waited < whole_s / 2, (waited, whole_s)
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)
