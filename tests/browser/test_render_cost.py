"""Rendering cost of a long streamed answer in real headless Chromium (Pyodide).

Streaming used to re-parse the whole answer on every token, so an answer's cost grew with the
square of its length: its last 500 tokens of 4,000 would cost about 15x its first 500 per token
(3,750 tokens to parse against 250, on average). Here a 4,000-token Markdown answer streams in
as fast as the page takes it, and its last 500 tokens cost at most 3x its first 500. One sample
on a shared 2-core machine reaches 2x by noise alone; the tighter yardstick (1.5x, a median of
reps) is `make bench`'s render section.

The answer comes from a stand-in for /api/converse (FakeConverse), not the real model: the
tiny model stops long before 4,000 tokens, and its speed would hide the page's own cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

import pytest

from tests.browser.helpers import ANSWER_S, RecordedPage, ask, last_answer, open_chat, sse, wait_answer
from tests.fakes import FakeConverse

TOKENS = 4000
WINDOW = 500  # tokens timed at the start and at the end
RATIO = 3.0

UNIT = (
    "## Part\n\nSome *text* with `code`, and more words in it, as a model writes them.\n\n"
    "- a point\n- another point with **bold**\n\n"
    "```python\ndef f(x):\n    return x + 1\n\nprint(f(2))\n```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
)


def answer_tokens() -> list[str]:
    """4,000 tokens of 4 characters; the last of each phase is a word the test can wait for."""
    text = UNIT * (TOKENS * 4 // len(UNIT) + 1)
    tokens = [text[i : i + 4] for i in range(0, TOKENS * 4, 4)]
    for end in (WINDOW, TOKENS - WINDOW, TOKENS):
        tokens[end - 1] = f" m{end}\n\n"  # ends its paragraph or list: the text after it renders on
    return tokens


class LongStream(FakeConverse):
    """Streams the answer in three phases (the first 500 tokens, then up to the last 500, then
    those), each as fast as the socket takes it; the next phase waits until the test says go."""

    def __init__(self) -> None:
        self.go = [threading.Event(), threading.Event()]
        self.started: list[float] = []  # perf_counter when each phase began writing
        super().__init__()

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
        tokens = answer_tokens()
        phases = [(0, WINDOW), (WINDOW, TOKENS - WINDOW), (TOKENS - WINDOW, TOKENS)]
        for number, (start, end) in enumerate(phases):
            if number:
                self.go[number - 1].wait(120)
            self.started.append(time.perf_counter())
            out.write(sse(*(("token", {"text": t}) for t in tokens[start:end])).encode())
            out.flush()
        done = {"stop_reason": "length", "prompt_tokens": 9, "completion_tokens": TOKENS, "ttft_s": 0.01}
        out.write(sse(("done", {**done, "tokens_per_s": 1000.0})).encode())
        out.flush()


@pytest.fixture
def long_stream() -> Iterator[LongStream]:
    stream = LongStream()
    yield stream
    stream.close()


def shown(page: Any, word: str) -> float:
    """Wait (checking every animation frame) until the answer shows `word`; when it did."""
    page.wait_for_function(
        "word => [...document.querySelectorAll('li[data-role=model]')].pop()?.textContent.includes(word)",
        arg=word,
        polling="raf",
        timeout=ANSWER_S,
    )
    return time.perf_counter()


def test_ms_per_token_at_the_end_of_a_long_answer_stays_near_the_start(
    recorded_page: RecordedPage, live_server: str, long_stream: LongStream
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    page.wait_for_selector("body[data-markdown=ready]", timeout=ANSWER_S)
    page.route("**/api/converse", lambda route: route.continue_(url=long_stream.url))
    ask(page, "Write a long answer")
    start_ms = (shown(page, f"m{WINDOW}") - long_stream.started[0]) / WINDOW * 1000
    long_stream.go[0].set()
    shown(page, f"m{TOKENS - WINDOW}")
    long_stream.go[1].set()
    end_ms = (shown(page, f"m{TOKENS}") - long_stream.started[2]) / WINDOW * 1000
    print(f"ms per token: first {WINDOW} tokens {start_ms:.2f}, last {WINDOW} tokens {end_ms:.2f}")
    wait_answer(page)
    assert last_answer(page).locator("[data-part=bubble] pre").count() > 10
    assert end_ms <= RATIO * start_ms, (start_ms, end_ms)
    assert recorded_page.errors == []
