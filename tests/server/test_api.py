"""`POST /api/tokens` (server.api.count_tokens): a text's tokens by the model's own tokenizer and
template, what the page checks an attachment against before sending it."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.default_model import default_model_path
from server.engines.base import Engine, EngineError
from server.engines.loader import plan_engine
from server.settings import Settings
from tests import tinymodels as tm
from tests.harness import LOCAL, chat, converse, wait_healthy
from wire.routes import TOKENS
from wire.types import MAX_TEXT, SYSTEM_MAX


def count(url: str, body: object) -> httpx.Response:
    return httpx.post(url + TOKENS.path, json=body, timeout=60)


def test_the_count_is_what_the_prompt_of_that_message_takes(live_server: str) -> None:
    text = "File: greet.py\n```python\nprint('Hello, world!')\n```\n\nWhat does this print?"
    counted = count(live_server, {"text": text}).json()
    assert counted["model"] == default_model_path().name
    assert counted["n_ctx"] == Settings().n_ctx and counted["max_tokens"] == Settings().max_tokens
    assert 10 < counted["tokens"] < len(text) and counted["overhead"] > 0
    # The very message as a chat: its prompt is the text's tokens plus the template's.
    _, events = converse(live_server, chat(text, max_tokens=1))
    done = events[-1]
    assert done[0] == "done" and done[1]["prompt_tokens"] == counted["tokens"] + counted["overhead"]
    assert count(live_server, {"text": text * 3}).json()["tokens"] > 2 * counted["tokens"]
    assert count(live_server, {"text": ""}).json()["tokens"] == 0


def test_the_overhead_is_that_of_the_chat_s_own_system_prompt(live_server: str) -> None:
    """The page counts a file under the chat's system prompt: the one a converse request would send."""
    system = "You are a pirate. Answer every question in rhyme, in one short verse."
    counted = count(live_server, {"text": "Hi", "system": system}).json()
    assert counted["overhead"] != count(live_server, {"text": "Hi"}).json()["overhead"]
    _, events = converse(live_server, chat("Hi", max_tokens=1, system=system))
    assert events[-1][1]["prompt_tokens"] == counted["tokens"] + counted["overhead"]


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"text": 5}', 400, "invalid_request"),
        (b"{}", 400, "invalid_request"),
        (b'{"text": "hi", "extra": 1}', 400, "invalid_request"),
        (b'{"text": "' + b"a" * (MAX_TEXT + 1) + b'"}', 400, "invalid_request"),
        (b'{"text": "' + b"a" * Settings().max_body_bytes + b'"}', 413, "request_too_large"),
        (b'{"text": "hi", "system": "' + b"s" * (SYSTEM_MAX + 1) + b'"}', 400, "invalid_request"),
    ],
    ids=["not-json", "not-a-string", "no-text", "unknown-field", "over-max-text", "over-body-limit", "over-system-max"],
)
def test_bad_input_is_a_clear_4xx(live_server: str, body: bytes, status: int, error_type: str) -> None:
    r = httpx.post(live_server + TOKENS.path, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == status and r.json()["error"]["type"] == error_type
    assert r.json()["error"]["message"]


def test_503_while_starting_then_a_model_not_yet_loaded_is_loaded_to_count(tmp_path: Path) -> None:
    """The real app in-process; its loader waits on a gate, as a big model on a slow disk would."""
    tm.write_gguf(tmp_path / "default.gguf")
    tm.write_gguf(tmp_path / "other.gguf", chat_template=tm.CHAT_TEMPLATE)
    gate = threading.Event()
    settings = Settings(model_path=str(tmp_path / "default.gguf"), models_dir=str(tmp_path), n_ctx=1024)
    load = plan_engine(settings)

    def slow_load() -> Engine:
        gate.wait(30)
        return load()

    app = create_app(settings, slow_load, lambda exc: None)
    with TestClient(app, base_url=LOCAL) as client:
        r = client.post(TOKENS.path, json={"text": "hi"})
        assert r.status_code == 503 and r.json()["error"]["type"] == "model_loading" and r.headers["retry-after"]
        gate.set()
        wait_healthy(client)
        loaded = {m["name"]: m["loaded"] for m in client.get("/api/models").json()["models"]}
        assert loaded == {"default.gguf": True, "other.gguf": False}
        r = client.post(TOKENS.path, json={"text": "hi there", "model": "other.gguf"})
        assert r.status_code == 200 and r.json()["model"] == "other.gguf" and r.json()["tokens"] > 0
        assert {m["name"]: m["loaded"] for m in client.get("/api/models").json()["models"]}["other.gguf"]
        r = client.post(TOKENS.path, json={"text": "hi", "model": "nope.gguf"})
        assert r.status_code == 404 and r.json()["error"]["type"] == "model_not_found"


def test_an_engine_fault_is_a_503_with_its_message_never_a_500(tmp_path: Path) -> None:
    """The real app and engine; only its renderer is made to fail, since no real model fails on cue."""
    tm.write_gguf(tmp_path / "default.gguf")
    settings = Settings(model_path=str(tmp_path / "default.gguf"), models_dir=str(tmp_path), n_ctx=1024)
    load = plan_engine(settings)

    def faulty() -> Engine:
        engine = load()

        def render(*_args: object) -> None:
            raise EngineError("the tokenizer went away")

        engine.render = render  # type: ignore[method-assign,assignment]  # broken on purpose
        return engine

    with TestClient(create_app(settings, faulty, lambda exc: None), base_url=LOCAL) as client:
        wait_healthy(client)
        r = client.post(TOKENS.path, json={"text": "hi"})
        assert r.status_code == 503 and r.json()["error"]["type"] == "engine_error"
        assert "the tokenizer went away" in r.json()["error"]["message"]
