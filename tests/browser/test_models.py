"""The header's Model picker and the model of each answer, in real headless Chromium.

Against the real server on its default model first. The second test needs a server that lists
several models and one that is slow to load, so `/api/models` comes from `page.route` and the
answer from a stand-in that sends `loading` events (both say so).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    ANSWER_S,
    RecordedPage,
    ask,
    assert_only_loopback,
    chat_rows,
    last_answer,
    open_chat,
    set_settings,
    sse,
    wait_answer,
)
from tests.fakes import FakeConverse
from wire import routes


def picker(page: Any) -> Any:
    return page.get_by_role("banner").get_by_label("Model", exact=True)


def test_the_picker_shows_the_default_model_and_answers_name_it(recorded_page: RecordedPage, live_server: str) -> None:
    page = recorded_page.page
    default = httpx.get(live_server + "/health").json()["model"]
    open_chat(recorded_page, live_server)
    expect(picker(page)).to_be_visible()
    expect(picker(page).locator("option:checked")).to_have_text(default)

    set_settings(page, {"Max tokens": "24"})
    ask(page, "What is the capital of Italy?")
    note = wait_answer(page).locator("[data-part=note]")
    expect(note).to_contain_text(default)
    expect(note).to_contain_text("tokens")  # beside the stats
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)


class LoadingStream(FakeConverse):
    """/api/converse on a model that takes a while to load.

    It says the model is loading (50 %), waits until the test releases it, then answers with
    the model's name. It records each request body.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        super().__init__()

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
        request = json.loads(body)
        self.requests.append(request)
        model = request.get("model") or "big.gguf"
        out.write(sse(("loading", {"model": model})).encode())
        out.flush()
        self.release.wait(30)
        done = {
            "stop_reason": "stop", "prompt_tokens": 9, "completion_tokens": 3, "ttft_s": 0.5,
            "tokens_per_s": 30.0, "model": model,
        }
        out.write(sse(("token", {"text": f"Hello from {model}"}), ("done", done)).encode())
        out.flush()

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def loading_stream() -> Iterator[LoadingStream]:
    stream = LoadingStream()
    yield stream
    stream.close()


MODELS = {
    "default": "big.gguf",
    "models": [
        {"name": "big.gguf", "usable": True, "engine": "llama-cpp", "n_ctx": 4096, "template": "gguf", "loaded": True},
        {"name": "tiny.gguf", "usable": True, "engine": "llama-cpp", "n_ctx": 2048, "template": "gguf"},
        {"name": "notes.txt", "usable": False, "reason": "not a GGUF or GGML model file"},
    ],
}


def test_switching_the_chats_model_loading_and_the_model_in_each_answer(
    recorded_page: RecordedPage, live_server: str, loading_stream: LoadingStream
) -> None:
    page = recorded_page.page
    body = json.dumps(MODELS)
    listing = f"**{routes.MODELS.path}"
    page.route(listing, lambda route: route.fulfill(status=200, content_type="application/json", body=body))
    page.route("**/api/converse", lambda route: route.continue_(url=loading_stream.url))
    open_chat(recorded_page, live_server)
    select = picker(page)
    expect(select.locator("option:checked")).to_have_text("big.gguf")  # a new chat on the server's default
    unusable = select.locator("option", has_text="notes.txt")
    expect(unusable).to_be_disabled()
    expect(unusable).to_contain_text("not a GGUF or GGML model file")

    select.select_option("tiny.gguf")
    ask(page, "Who are you?")
    answer = last_answer(page)
    expect(answer.locator("[data-part=note]")).to_have_text("Loading tiny.gguf…")
    expect(answer).to_have_attribute("data-status", "pending")
    loading_stream.release.set()
    expect(answer).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    expect(answer.locator("[data-part=bubble]")).to_have_text("Hello from tiny.gguf")
    expect(answer.locator("[data-part=note]")).to_contain_text("tiny.gguf · 3 tokens")
    assert loading_stream.requests[0]["model"] == "tiny.gguf"

    # A new chat starts on the last model used; it can be switched back to the default.
    page.get_by_role("button", name="New chat").click()
    expect(select.locator("option:checked")).to_have_text("tiny.gguf")
    select.select_option("big.gguf")
    ask(page, "And you?")
    expect(last_answer(page).locator("[data-part=note]")).to_contain_text("big.gguf · 3 tokens", timeout=ANSWER_S)
    assert loading_stream.requests[1]["model"] == "big.gguf"

    # Each chat keeps its model, across a reload too.
    chats = chat_rows(page)
    chats.filter(has_text="Who are you?").get_by_role("button").first.click()
    expect(select.locator("option:checked")).to_have_text("tiny.gguf")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(picker(page).locator("option:checked")).to_have_text("tiny.gguf")
    expect(last_answer(page).locator("[data-part=note]")).to_contain_text("tiny.gguf")
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The real server on a MODELS_DIR holding the default model (by symlink) and a tiny written one."""
    from server.default_model import default_model_path
    from tests import tinymodels as tm
    from tests.harness import start_server, stop_server

    folder = tmp_path_factory.mktemp("models")
    default = default_model_path()
    (folder / default.name).symlink_to(default)
    tm.write_gguf(folder / "tiny.gguf", "f32")
    env = {"MODELS_DIR": str(folder), "MODEL_PATH": str(folder / default.name), "THREADS": "1"}
    proc, url = start_server(env=env)
    try:
        yield url, default.name
    finally:
        stop_server(proc)


def test_each_chat_answers_with_the_model_it_names(recorded_page: RecordedPage, two_models: tuple[str, str]) -> None:
    from tests.tinymodels import ANSWER

    url, default = two_models
    page = recorded_page.page
    open_chat(recorded_page, url)
    select = picker(page)
    expect(select.locator("option:checked")).to_have_text(default)
    expect(select.locator("option")).to_have_text([default, "tiny.gguf"], timeout=10_000)
    set_settings(page, {"Max tokens": "24"})

    ask(page, "What is the capital of Italy?")
    expect(wait_answer(page).locator("[data-part=note]")).to_contain_text(f"{default} · ")

    page.get_by_role("button", name="New chat").click()
    select.select_option("tiny.gguf")
    ask(page, "What is the capital of France?")
    answer = wait_answer(page)  # the tiny model is loaded first (MAX_LOADED_MODELS=1: in place of the default)
    expect(answer.locator("[data-part=bubble]")).to_have_text(ANSWER)
    expect(answer.locator("[data-part=note]")).to_contain_text("tiny.gguf · ")

    # The first chat is still on the default model: regenerating its answer uses it again.
    chats = chat_rows(page)
    chats.filter(has_text="capital of Italy").get_by_role("button").first.click()
    expect(select.locator("option:checked")).to_have_text(default)
    page.get_by_role("button", name="Regenerate").click()
    note = wait_answer(page).locator("[data-part=note]")
    expect(note).to_contain_text(f"{default} · ")
    expect(last_answer(page).locator("[data-part=bubble]")).not_to_have_text(ANSWER)
    assert recorded_page.errors == []
    assert_only_loopback(recorded_page)
