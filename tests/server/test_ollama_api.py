"""The Ollama front door, driven by the `ollama` library on the real server and default model."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from server.default_model import default_model_path
from tests import tinymodels as tm
from tests.harness import COUNT, free_port, idle, metrics, run_server, start_server, stop_server, wait_until

MODEL = default_model_path().name
GREEDY = {"temperature": 0, "num_predict": 8, "seed": 1}


def client(url: str) -> ollama.Client:
    return ollama.Client(host=url)


def test_list_show_ps_and_version(live_server: str) -> None:
    c = client(live_server)
    listed = c.list().models
    assert [m.model for m in listed] == [MODEL]
    assert listed[0].size == default_model_path().stat().st_size and listed[0].details is not None
    assert listed[0].details.format == "gguf" and listed[0].details.family == "gemma3"
    shown = c.show(MODEL)
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "gemma3"
    assert shown.modelinfo["gemma3.context_length"] > 0 and shown.capabilities == ["completion", "tools", "embedding"]
    running = c.ps().models
    assert [m.model for m in running] == [MODEL]
    assert running[0].context_length == shown.modelinfo["gemma3.context_length"]
    assert httpx.get(f"{live_server}/api/version").json()["version"].count(".") == 2


def test_chat_whole_and_streamed_agree(live_server: str) -> None:
    c = client(live_server)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}]
    whole = c.chat(model=MODEL, messages=messages, options=GREEDY)
    assert whole.done and whole.done_reason in ("stop", "length") and whole.message.role == "assistant"
    assert whole.message.content and whole.eval_count is not None and 0 < whole.eval_count <= 8
    assert whole.prompt_eval_count is not None and whole.prompt_eval_count > 0
    parts = list(c.chat(model=f"{MODEL}:latest", messages=messages, options=GREEDY, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_generate_and_its_options(live_server: str) -> None:
    c = client(live_server)
    whole = c.generate(model=MODEL, prompt=COUNT, options={**GREEDY, "num_predict": 5})
    assert whole.done_reason == "length" and whole.eval_count == 5 and whole.response
    # Not compared with `whole`: after "10," the model's next number is a near tie, and a prompt read
    # again from the cache can tip it either way
    parts = list(c.generate(model=MODEL, prompt=COUNT, options={**GREEDY, "num_predict": 5}, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done and parts[-1].eval_count == 5
    assert "".join(p.response or "" for p in parts).strip()
    stopped = c.generate(model=MODEL, prompt=COUNT, options={**GREEDY, "num_predict": 40, "stop": [","]})
    assert (stopped.response or "").strip() and "," not in (stopped.response or "") and stopped.done_reason == "stop"
    loaded = c.generate(model=MODEL)  # no prompt: Ollama's way to load a model
    assert loaded.done and loaded.done_reason == "load"


def test_format_gives_json_that_fits_the_schema(live_server: str) -> None:
    # Bounded so that the base model's JSON must end within the budget
    digit = {"type": "integer", "minimum": 0, "maximum": 9}
    schema = {"type": "object", "properties": {"n": digit}, "required": ["n"], "additionalProperties": False}
    answer = client(live_server).chat(
        model=MODEL, messages=[{"role": "user", "content": "Give a number as JSON."}], format=schema,
        options={**GREEDY, "num_predict": 40},
    )
    assert answer.done_reason == "stop", repr(answer.message.content)
    assert json.loads(answer.message.content or "")["n"] in range(10)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, "nope"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi", "images": ["AAAA"]}]}, "images"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 9}},
         "temperature"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 10**9}},
         "num_predict"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "format": "yaml"}, "format"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
          "tools": [{"type": "function", "function": {"name": "f", "parameters": {"enum": ["x" * 40_000]}}}]},
         "tools[0]"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_bad_chats_are_4xx_in_ollamas_shape(live_server: str, body: dict[str, object], needle: str) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client(live_server)._request_raw("POST", "/api/chat", json=body)  # type: ignore[no-untyped-call]
    assert 400 <= raised.value.status_code < 500
    assert isinstance(raised.value.error, str) and needle in raised.value.error


def tool_chat(result: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "content": result, "tool_name": "get_time"},
    ]


GET_TIME = {"type": "function", "function": {"name": "get_time", "description": "The time now",
                                             "parameters": {"type": "object", "properties": {}}}}


def test_tools_and_tool_results_reach_the_prompt(live_server: str) -> None:
    c = client(live_server)
    options = {**GREEDY, "num_predict": 1}
    short = c.chat(model=MODEL, messages=tool_chat("noon"), tools=[GET_TIME], options=options)
    long = c.chat(model=MODEL, messages=tool_chat("noon " * 50), tools=[GET_TIME], options=options)
    assert short.prompt_eval_count is not None and long.prompt_eval_count is not None
    assert long.prompt_eval_count - short.prompt_eval_count >= 45  # the tool's result is read, word by word
    assert short.done and short.done_reason in ("stop", "length")


def test_bad_generate_bodies_name_what_is_unsupported(live_server: str) -> None:
    for field, value in (("raw", True), ("suffix", "x"), ("context", [1, 2])):
        r = httpx.post(f"{live_server}/api/generate", json={"model": MODEL, "prompt": "hi", field: value})
        assert r.status_code == 400 and field in r.json()["error"], field
    r = httpx.post(f"{live_server}/api/show", json={"model": "nope.gguf"})
    assert r.status_code == 404 and "nope.gguf" in r.json()["error"]


def test_a_stream_whose_client_leaves_is_cancelled(live_server: str) -> None:
    wait_until(lambda: idle(live_server))
    before = metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"]
    body = {"model": MODEL, "prompt": COUNT, "options": {"temperature": 0, "num_predict": 2000}}
    with httpx.stream("POST", f"{live_server}/api/generate", json=body) as r:
        first = json.loads(next(r.iter_lines()))
        assert first["done"] is False
    wait_until(lambda: metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"] > before)


def test_a_second_port_serves_ollamas_clients_where_they_look(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tm.write_gguf(path)
    port = free_port()
    proc, url = start_server("--model", str(path), env={"OLLAMA_PORT": str(port)})
    try:
        there = client(f"http://127.0.0.1:{port}")
        assert [m.model for m in there.list().models] == ["tiny.gguf"]
        assert there.generate(model="tiny.gguf", prompt="hi", options={"num_predict": 2}).done
        assert [m.model for m in client(url).list().models] == ["tiny.gguf"]  # and on PORT as ever
    finally:
        stop_server(proc)


def test_a_second_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_server("--port", str(free_port()), env={"OLLAMA_PORT": str(port)})
    assert result.returncode == 2 and f"port {port}" in result.stderr and "Traceback" not in result.stderr
