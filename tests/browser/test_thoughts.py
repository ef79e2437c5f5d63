"""A thinking model's thoughts in real headless Chromium: folded above the answer, streaming live.

The first test's answers come from a stand-in for /api/converse (`ThinkingStream`): the default
model (Gemma 3 270M) never writes think blocks, and the test must hold the stream between pieces
to open the block mid-thought. The stand-in sends what the real server sends for a thinking model
(`thought` events, then `token` events; tests/server/test_reasoning.py checks the server end to end).
The second test has no fake: the real server on a tiny thinking model (tests/tinymodels.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

import pytest
from playwright.sync_api import expect

from client.components.chat_area import THINKING, THOUGHTS_LABEL
from tests import tinymodels as tm
from tests.browser.helpers import ANSWER_S, AXE, RUN_AXE, VIEWPORT, ask, done, last_answer, sse, wait_answer
from tests.fakes import FakeConverse
from tests.harness import start_thinking_server, stop_server

PYTHON_READY_MS = 60_000


class ThinkingStream(FakeConverse):
    """/api/converse for a thinking model. The first answer thinks "Hm, France.", waits for
    `more`, thinks on, waits for `answer`, then answers "Paris."; later ones answer at once.
    It records each request body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.more = threading.Event()
        self.answer_now = threading.Event()
        super().__init__()

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
        self.requests.append(json.loads(body))
        if len(self.requests) > 1:
            out.write(sse(("token", {"text": "Rome."}), done()).encode())
            return
        steps = [("thought", "Hm, ", None), ("thought", "France.", None),
                 ("thought", "\nStill sure.", self.more), ("token", "Paris.", self.answer_now)]  # fmt: skip
        for name, text, after in steps:
            if after is not None:
                after.wait(30)
            out.write(sse((name, {"text": text})).encode())
            out.flush()
        out.write(sse(done()).encode())

    def close(self) -> None:
        self.more.set()
        self.answer_now.set()
        super().close()


@pytest.fixture
def thinking_stream() -> Iterator[ThinkingStream]:
    stream = ThinkingStream()
    yield stream
    stream.close()


@pytest.fixture
def axe_page(chromium: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page on which axe may be injected (bypass_csp: it is an inline script), and its errors."""
    context = chromium.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Traceback" in m.text else None)
    yield page, errors
    context.close()


def load(page: Any, url: str) -> None:
    page.goto(url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_MS)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def is_open(details: Any) -> bool:
    return bool(details.evaluate("el => el.open"))


def test_thoughts_stream_folded_open_on_demand_stay_open_and_go_back_with_the_history(
    axe_page: tuple[Any, list[str]], live_server: str, thinking_stream: ThinkingStream
) -> None:
    page, errors = axe_page
    page.route("**/api/converse", lambda route: route.continue_(url=thinking_stream.url))
    load(page, live_server)
    ask(page, "Capital of France?")
    answer = last_answer(page)
    thoughts = answer.locator("details[data-part=thoughts]")
    summary, text = thoughts.locator("summary"), thoughts.locator("div")
    bubble = answer.locator("[data-part=bubble]")

    # Streaming, folded: the summary says the model is thinking; the text is there but not shown.
    expect(summary).to_have_text(THINKING)
    expect(text).to_have_text("Hm, France.")
    expect(text).to_be_hidden()
    assert not is_open(thoughts)
    expect(bubble).to_be_hidden()  # no answer text yet: the thoughts alone
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []

    # Opened by the reader, it stays open (the same element) while thoughts and answer arrive.
    summary.click()
    expect(text).to_be_visible()
    thoughts.evaluate("el => { el.dataset.mark = 'kept' }")
    thinking_stream.more.set()
    expect(text).to_have_text("Hm, France.\nStill sure.")
    assert is_open(thoughts)
    thinking_stream.answer_now.set()
    wait_answer(page)
    expect(summary).to_have_text(THOUGHTS_LABEL)
    expect(bubble).to_have_text("Paris.")
    assert "<think>" not in (bubble.text_content() or "")
    assert is_open(thoughts) and thoughts.get_attribute("data-mark") == "kept"
    assert page.evaluate(RUN_AXE) == []
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(RUN_AXE) == []
    page.emulate_media(color_scheme="light")

    # The next request carries the thoughts with their answer; the server's template decides the rest.
    ask(page, "And Italy?")
    expect(last_answer(page).locator("[data-part=bubble]")).to_have_text("Rome.", timeout=ANSWER_S)
    sent = thinking_stream.requests[1]["conversation"]["messages"]
    assert sent[1] == {"user": False, "text": "Paris.", "thoughts": "Hm, France.\nStill sure."}
    assert "thoughts" not in sent[0] and "thoughts" not in sent[2]
    expect(last_answer(page).locator("details[data-part=thoughts]")).to_have_count(0)  # it did not think

    # A reload keeps them, folded again.
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_MS)
    kept = page.locator("li[data-role=model]").first.locator("details[data-part=thoughts]")
    expect(kept.locator("summary")).to_have_text(THOUGHTS_LABEL)
    expect(kept.locator("div")).to_have_text("Hm, France.\nStill sure.")
    assert not is_open(kept)
    assert errors == []


@pytest.fixture(scope="module")
def thinking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_thinking_server(tmp_path_factory.mktemp("thinking"))
    yield url
    stop_server(proc)


def test_a_real_thinking_models_thoughts_show_folded_above_its_answer(
    axe_page: tuple[Any, list[str]], thinking_server: str
) -> None:
    """No fake: the real server, llama.cpp and a tiny model whose template opens <think>."""
    page, errors = axe_page
    load(page, thinking_server)
    ask(page, "Capital of France?")
    answer = wait_answer(page)
    thoughts = answer.locator("details[data-part=thoughts]")
    expect(thoughts.locator("summary")).to_have_text(THOUGHTS_LABEL)
    expect(thoughts.locator("div")).to_have_text(tm.THOUGHTS)
    assert not is_open(thoughts)
    expect(answer.locator("[data-part=bubble]")).to_have_text(tm.ANSWER)
    assert errors == []
