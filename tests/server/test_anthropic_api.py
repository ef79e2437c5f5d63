"""Anthropic's Messages API, driven by the `anthropic` library on the real server and default model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, TextBlock, ThinkingBlock, ToolParam

from server.default_model import default_model_path
from tests import tinymodels as tm
from tests.harness import COUNT, idle, metrics, start_thinking_server, stop_server, wait_until

MODEL = default_model_path().name
QUESTION: list[MessageParam] = [{"role": "user", "content": "Name a colour."}]
# The library no longer sends sampling fields; other Anthropic clients do, and so do tests, to be greedy
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def client(live_server: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_server, api_key="unused", max_retries=0)


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if isinstance(b, TextBlock))


def test_whole_and_streamed_answers_agree(client: anthropic.Anthropic) -> None:
    whole = client.messages.create(model=MODEL, max_tokens=8, messages=QUESTION, system="Be brief.", extra_body=GREEDY)
    assert whole.type == "message" and whole.role == "assistant" and whole.id.startswith("msg_")
    assert whole.stop_reason in ("end_turn", "max_tokens") and text_of(whole)
    assert 0 < whole.usage.output_tokens <= 8 and whole.usage.input_tokens > 0
    system = [{"type": "text", "text": "Be brief."}]  # the system prompt as blocks is the same prompt
    with client.messages.stream(model=MODEL, max_tokens=8, messages=QUESTION, extra_body=GREEDY,
                                system=system) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text_of(whole) == text_of(final)
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.stop_reason == whole.stop_reason


def test_how_an_answer_ends(client: anthropic.Anthropic) -> None:
    count: list[MessageParam] = [{"role": "user", "content": COUNT}]
    cut = client.messages.create(model=MODEL, max_tokens=5, messages=count, extra_body=GREEDY)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 5 and cut.stop_sequence is None
    stopped = client.messages.create(
        model=MODEL, max_tokens=60, messages=count, extra_body=GREEDY, stop_sequences=["###", ","]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == ","
    assert text_of(stopped).strip() and "," not in text_of(stopped)


def test_count_tokens_is_the_prompt_an_answer_reads(client: anthropic.Anthropic) -> None:
    answered = client.messages.create(model=MODEL, max_tokens=1, messages=QUESTION, system="Be brief.")
    counted = client.messages.count_tokens(model=MODEL, messages=QUESTION, system="Be brief.")
    assert counted.input_tokens == answered.usage.input_tokens
    longer = client.messages.count_tokens(model=MODEL, messages=QUESTION, system="Be brief. " * 10)
    assert longer.input_tokens - counted.input_tokens >= 18
    bare = client.messages.count_tokens(model=MODEL, messages=QUESTION)  # the server's own system prompt
    assert bare.input_tokens == client.messages.create(model=MODEL, max_tokens=1, messages=QUESTION).usage.input_tokens


def tool_chat(result: str) -> list[MessageParam]:
    return [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}]},
    ]


GET_TIME: ToolParam = {"name": "get_time", "description": "The time now", "input_schema": {"type": "object"}}


def test_tool_blocks_reach_the_prompt(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model=MODEL, messages=tool_chat("noon"), tools=[GET_TIME])
    long = client.messages.count_tokens(model=MODEL, messages=tool_chat("noon " * 50), tools=[GET_TIME])
    assert long.input_tokens - short.input_tokens >= 45  # the tool's result is read, word by word
    answer = client.messages.create(model=MODEL, max_tokens=8, messages=tool_chat("noon"), tools=[GET_TIME],
                                    extra_body=GREEDY)
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use") and answer.usage.input_tokens > 0


def test_typed_control_tokens_stay_text(client: anthropic.Anthropic) -> None:
    typed = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "<end_of_turn>" * 20}])
    plain = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert typed.input_tokens - plain.input_tokens > 40  # as one special token each, 20 would add 19


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": MODEL, "messages": QUESTION}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]},
         "images"),
        ({"model": MODEL, "max_tokens": 8, "messages": QUESTION,
          "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"model": MODEL, "max_tokens": 10**9, "messages": QUESTION}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "nonsense"}]}]},
         "type"),
        ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "assistant", "content": "Hi"}]}, "user"),
    ],
)
def test_bad_requests_are_400s_in_anthropics_shape(live_server: str, body: dict[str, Any], needle: str) -> None:
    r = httpx.post(f"{live_server}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def test_the_library_raises_its_own_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}])
    assert "documents" in refused.value.message


def test_a_stream_whose_client_leaves_is_cancelled(client: anthropic.Anthropic, live_server: str) -> None:
    wait_until(lambda: idle(live_server))
    before = metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"]
    count: list[MessageParam] = [{"role": "user", "content": COUNT}]
    with client.messages.stream(model=MODEL, max_tokens=2000, messages=count, extra_body=GREEDY) as stream:
        assert next(iter(stream.text_stream))
    wait_until(lambda: metrics(live_server)["snake_llama_answers_total{stop_reason=cancelled}"] > before)


def test_output_format_gives_json_that_fits_the_schema(client: anthropic.Anthropic) -> None:
    digit = {"type": "integer", "minimum": 0, "maximum": 9}
    schema = {"type": "object", "properties": {"n": digit}, "required": ["n"], "additionalProperties": False}
    answer = client.messages.create(
        model=MODEL, max_tokens=40, messages=[{"role": "user", "content": "Give a number as JSON."}],
        output_config={"format": {"type": "json_schema", "schema": schema}}, extra_body=GREEDY,
    )
    assert answer.stop_reason == "end_turn", text_of(answer)
    assert json.loads(text_of(answer))["n"] in range(10)


@pytest.fixture(scope="module")
def thinking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_thinking_server(tmp_path_factory.mktemp("thinking"))
    yield url
    stop_server(proc)


def test_a_thinking_models_thoughts_are_thinking_blocks(thinking_server: str) -> None:
    client = anthropic.Anthropic(base_url=thinking_server, api_key="unused", max_retries=0)
    asked: list[MessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.messages.create(model="any", max_tokens=40, messages=asked, extra_body=GREEDY)
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert isinstance(whole.content[0], ThinkingBlock) and whole.content[0].thinking == tm.THOUGHTS
    assert text_of(whole) == tm.ANSWER and whole.stop_reason == "end_turn"
    with client.messages.stream(model="any", max_tokens=40, messages=asked, extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
