"""The remote engine (ENGINE=openai): our server in front of a real `python -m llama_cpp.server`
with the default model, and in front of a small scripted OpenAI-style server for the failures a
real one will not produce on demand (dying mid-answer, stalling, ignoring the stop hint).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from client.protocol import SamplingParams
from server.default_model import default_model_path
from server.engines.base import Generation
from server.engines.openai_engine import OpenAIEngine
from server.prompt import STOP_MARKERS
from server.settings import Settings
from tests.conftest import ROOT, free_port, run_async, spawn, start_server, stop_server
from tests.sse import chat, converse

REMOTE_MODEL = "gemma-local"


def answer_of(events: list[tuple[str, Any]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


# -- a real llama.cpp server on loopback ---------------------------------------------------------


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (`.../v1`) of a real `python -m llama_cpp.server` serving the default model."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
            "--model_alias", REMOTE_MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--interrupt_requests", "False"]
    proc = spawn(argv, f"{base}/models", timeout=120)
    yield base
    stop_server(proc)


@pytest.fixture(scope="module")
def openai_app(llama_server: str) -> Iterator[str]:
    proc, url = start_server(
        "--engine", "openai",
        env={"OPENAI_BASE_URL": llama_server, "OPENAI_MODEL": REMOTE_MODEL, "N_CTX": "2048"},
    )
    yield url
    stop_server(proc)


def test_health_names_openai_engine(openai_app: str) -> None:
    r = httpx.get(f"{openai_app}/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["engine"] == "openai"
    assert body["model"] == REMOTE_MODEL


def test_chat_streams_tokens_then_done(openai_app: str) -> None:
    body = chat("What is the capital of Germany?", temperature=0, max_tokens=48)
    status, events = converse(openai_app, body)
    assert status == 200
    names = [name for name, _ in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert set(names[:-1]) == {"token"} and len(names) >= 2
    done = events[-1][1]
    assert done["stop_reason"] in ("stop", "length")
    assert done["prompt_tokens"] > 40  # counted by the remote's tokenizer
    assert 1 <= done["completion_tokens"] <= 48
    assert done["ttft_s"] > 0
    answer = answer_of(events)
    assert answer.strip()
    assert "### Human" not in answer


@pytest.mark.parametrize("question", ["What is the capital of Italy?", "Tell me a joke.", "Who are you?"])
def test_stop_marker_never_leaks(openai_app: str, question: str) -> None:
    status, events = converse(openai_app, chat(question, temperature=0, max_tokens=96))
    assert status == 200
    assert events[-1][0] == "done"
    answer = answer_of(events)
    for marker in STOP_MARKERS:
        assert marker not in answer


def test_base_model_stops_at_human_turn(openai_app: str) -> None:
    # the base model starts "### Human:" by itself after a short answer: the stop hint ends it
    body = chat("What is the capital of Spain?", temperature=0, max_tokens=200)
    status, events = converse(openai_app, body)
    assert events[-1][0] == "done"
    assert events[-1][1]["stop_reason"] == "stop"
    assert events[-1][1]["completion_tokens"] < 200


def test_answer_budget_ends_with_length(openai_app: str) -> None:
    body = chat("Write a long story about a dragon.", temperature=0, max_tokens=3)
    status, events = converse(openai_app, body)
    assert events[-1][0] == "done"
    assert events[-1][1]["stop_reason"] == "length"
    assert 1 <= events[-1][1]["completion_tokens"] <= 3


def test_count_tokens_uses_the_remote_tokenizer(llama_server: str) -> None:
    from llama_cpp import Llama

    engine = OpenAIEngine.connect(Settings(openai_base_url=llama_server, openai_model=REMOTE_MODEL))
    local = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    for text in ("Hello there, how are you?", "### Human:Ça va? 日本語\n", ""):
        assert engine.count_tokens(text) == len(local.tokenize(text.encode(), add_bos=False, special=True))
    engine.close()


# -- failures to start ---------------------------------------------------------------------------


def run_server(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--engine", "openai", "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_remote_exits_2_with_one_line() -> None:
    closed = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{closed}/v1"
    started = time.monotonic()
    result = run_server({"OPENAI_BASE_URL": url, "OPENAI_MODEL": ""})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("snake_llama: error:")
    assert f"{url}/models" in lines[0] and "OPENAI_BASE_URL" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert time.monotonic() - started < 30


def test_unset_base_url_exits_2_and_names_the_setting() -> None:
    result = run_server({"OPENAI_BASE_URL": ""})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "OPENAI_BASE_URL" in lines[0] and "Traceback" not in result.stderr


# -- a scripted remote for failures --------------------------------------------------------------


class ScriptedRemote(ThreadingHTTPServer):
    """An OpenAI-style server whose completions follow `mode`:

    ok: an answer that runs past "### Human" (ignoring the stop hint), then usage and [DONE];
    strict: as ok, but HTTP 400 for a request with `top_k` (as OpenAI itself answers);
    drop: two chunks, then the connection is cut; stall: one chunk, then silence;
    endless: a chunk every 20 ms until the client goes away (recorded in `disconnected`);
    slow: a short answer (no marker) at a chunk per 100 ms; `max_active` counts answers at once.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.disconnected = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": finish}]}


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedRemote

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "scripted-model", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path != "/v1/completions":
            self.send_json(404, {"error": {"message": "not found"}})
            return
        self.server.requests.append(body)
        if self.server.mode == "strict" and "top_k" in body:
            self.send_json(400, {"error": {"message": "Unrecognized request argument supplied: top_k"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        mode = self.server.mode
        counted = mode == "slow"  # earlier tests may leave stalled answers running
        with self.server.lock:
            self.server.active += counted
            self.server.max_active = max(self.server.max_active, self.server.active)
        try:
            if mode in ("ok", "strict", "slow"):
                pieces = ["Paris", " is", " lovely."]
                if mode != "slow":
                    pieces = ["Paris", " is it.", "\n##", "# Hum", "an: and more"]
                for text in pieces:
                    self.event(chunk(text))
                    time.sleep(0.1 if mode == "slow" else 0)
                self.event(chunk("", "stop"))
                self.event({"choices": [], "usage": {"prompt_tokens": 123, "completion_tokens": 5}})
                self.send_chunk(b"data: [DONE]\n\n")
                self.send_chunk(b"")
            elif mode == "drop":
                self.event(chunk("Hello"))
                self.event(chunk(" world"))
                time.sleep(0.2)
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif mode == "stall":
                self.event(chunk("Hello"))
                time.sleep(5)
                self.close_connection = True
            elif mode == "endless":
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    self.event(chunk(" word"))
                    time.sleep(0.02)
        except OSError:  # the client went away
            self.server.disconnected.set()
            self.close_connection = True
        finally:
            with self.server.lock:
                self.server.active -= counted

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj: dict[str, Any]) -> None:
        self.send_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedRemote]:
    remote = ScriptedRemote()
    thread = threading.Thread(target=remote.serve_forever, daemon=True)
    thread.start()
    yield remote
    remote.shutdown()
    remote.server_close()


@pytest.fixture(scope="module")
def scripted_app(scripted: ScriptedRemote) -> Iterator[str]:
    # no OPENAI_MODEL: the engine takes the first model the remote lists
    env = {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_MODEL": "", "OPENAI_TIMEOUT": "2"}
    proc, url = start_server("--engine", "openai", env=env)
    yield url
    stop_server(proc)


def test_request_carries_prompt_params_and_stop_hint(scripted: ScriptedRemote, scripted_app: str) -> None:
    scripted.mode = "ok"
    scripted.requests.clear()
    status, events = converse(
        scripted_app, chat("Capital of France?", temperature=0, max_tokens=7, seed=5, top_k=3, top_p=0.5)
    )
    assert status == 200 and events[-1][0] == "done"
    [body] = scripted.requests
    assert body["model"] == "scripted-model"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["prompt"].endswith("### Human:Capital of France?\n### Assistant:")
    assert body["stop"] == ["### Human", "### Assistant"]
    sent = (body["max_tokens"], body["temperature"], body["seed"], body["top_k"], body["top_p"])
    assert sent == (7, 0, 5, 3, 0.5)
    assert "repeat_penalty" not in body


def test_our_stop_filter_applies_when_the_remote_ignores_the_hint(
    scripted: ScriptedRemote, scripted_app: str
) -> None:
    scripted.mode = "ok"
    status, events = converse(scripted_app, chat("Capital of France?"))
    assert answer_of(events) == "Paris is it."
    done = events[-1]
    assert done[0] == "done" and done[1]["stop_reason"] == "stop"


def test_engine_reads_usage_and_finish_reason(scripted: ScriptedRemote) -> None:
    # the engine alone, run to the end of the remote's stream (the scheduler's filter would stop
    # at the marker before the usage chunk arrives)
    scripted.mode = "ok"
    engine = OpenAIEngine.connect(Settings(openai_base_url=scripted.base_url, openai_model=""))
    gen = Generation()
    pieces = list(engine.stream("prompt", SamplingParams(), gen))
    assert pieces == ["Paris", " is it.", "\n##", "# Hum", "an: and more"]
    assert (gen.prompt_tokens, gen.completion_tokens, gen.finish_reason) == (123, 5, "stop")
    assert engine.model == "scripted-model"
    assert engine.count_tokens("x" * 30) == 10  # no tokenizer endpoint: bytes / 3
    engine.close()


def test_strict_remote_gets_the_request_again_without_extra_fields(scripted: ScriptedRemote) -> None:
    scripted.mode = "strict"
    scripted.requests.clear()
    engine = OpenAIEngine.connect(Settings(openai_base_url=scripted.base_url, openai_model=""))
    for _ in range(2):
        assert "".join(engine.stream("p", SamplingParams(top_k=3, repeat_penalty=1.2), Generation())) == (
            "Paris is it.\n### Human: and more"
        )
    assert ["top_k" in body for body in scripted.requests] == [True, False, False]
    assert not any("repeat_penalty" in body for body in scripted.requests[1:])
    engine.close()


def test_remote_dying_mid_answer_is_an_error_event_and_the_server_goes_on(
    scripted: ScriptedRemote, scripted_app: str
) -> None:
    scripted.mode = "drop"
    status, events = converse(scripted_app, chat("Say hello."))
    assert status == 200
    names = [name for name, _ in events]
    assert names[-1] == "error" and "done" not in names
    assert answer_of(events) == "Hello world"
    assert "remote model server" in events[-1][1]["message"]
    assert httpx.get(f"{scripted_app}/health", timeout=5).status_code == 200
    scripted.mode = "ok"
    status, events = converse(scripted_app, chat("Capital of France?"))
    assert events[-1][0] == "done" and answer_of(events) == "Paris is it."


def test_stalled_remote_times_out_into_an_error_event(scripted: ScriptedRemote, scripted_app: str) -> None:
    scripted.mode = "stall"
    started = time.monotonic()
    status, events = converse(scripted_app, chat("Say hello."))
    assert events[-1][0] == "error"
    assert "timed out" in events[-1][1]["message"]
    assert time.monotonic() - started < 4.5  # OPENAI_TIMEOUT=2, not the remote's 5 s
    scripted.mode = "ok"
    assert converse(scripted_app, chat("Capital of France?"))[1][-1][0] == "done"


def test_client_leaving_closes_the_remote_stream(scripted: ScriptedRemote, scripted_app: str) -> None:
    scripted.mode = "endless"
    scripted.disconnected.clear()
    with httpx.stream("POST", f"{scripted_app}/api/converse", json=chat("Talk forever."), timeout=30) as r:
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("event: token")
            if seen >= 3:
                break
    assert seen == 3
    assert scripted.disconnected.wait(5), "the remote kept streaming after the client left"
    scripted.mode = "ok"
    assert converse(scripted_app, chat("Capital of France?"))[1][-1][0] == "done"


def concurrent_chats(url: str, n: int) -> list[str]:
    async def one(client: httpx.AsyncClient) -> str:
        async with client.stream("POST", f"{url}/api/converse", json=chat("Capital of France?")) as r:
            return [line async for line in r.aiter_lines() if line.startswith("event:")][-1]

    async def main() -> list[str]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(one(client) for _ in range(n)))

    return run_async(main())


@pytest.mark.parametrize(("parallel", "expected"), [("1", 1), ("3", 3)])
def test_openai_parallel_sets_how_many_answers_stream_at_once(
    scripted: ScriptedRemote, parallel: str, expected: int
) -> None:
    env = {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_MODEL": "", "OPENAI_PARALLEL": parallel}
    proc, url = start_server("--engine", "openai", env=env)
    try:
        scripted.mode = "slow"
        scripted.max_active = 0
        assert concurrent_chats(url, 5) == ["event: done"] * 5
        assert scripted.max_active == expected
    finally:
        scripted.mode = "ok"
        stop_server(proc)
