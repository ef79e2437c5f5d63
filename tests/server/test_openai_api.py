"""The OpenAI-compatible API, driven by the official `openai` client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.shared_params import FunctionDefinition, ResponseFormatJSONSchema

from server.bodies import MAX_SCHEMA_BYTES
from server.prompt import STOP_MARKERS
from tests.harness import idle, metrics, start_looping_server, stop_server, wait_until
from wire.types import MAX_TOOLS


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of Germany?"}]
COUNT = "Count from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"  # an answer of thousands of tokens


def test_models_lists_the_loaded_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gemma-3-270m-q4_k_m.gguf"]


def test_non_streaming_answer_with_usage(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="any", messages=QUESTION, temperature=0, max_tokens=32)
    text = result.choices[0].message.content or ""
    assert text.strip()
    assert result.choices[0].finish_reason in ("stop", "length")
    assert result.usage is not None and result.usage.completion_tokens >= 1
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert not any(marker in text for marker in STOP_MARKERS)


def test_streamed_text_equals_non_streamed_at_temperature_zero(client: openai.OpenAI) -> None:
    # Warm the KV cache first: llama.cpp's numbers after a cached prefix can differ slightly
    # from a cold read, so the two compared calls must start from the same cache state.
    client.chat.completions.create(model="any", messages=QUESTION, temperature=0, max_tokens=32, seed=1)
    whole = client.chat.completions.create(model="any", messages=QUESTION, temperature=0, max_tokens=32, seed=1)
    chunks = list(
        client.chat.completions.create(
            model="any", messages=QUESTION, temperature=0, max_tokens=32, seed=1, stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_system_message_and_stop_strings_are_honoured(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "A chat in which the assistant counts."}, *QUESTION
    ]
    free = client.chat.completions.create(model="any", messages=messages, temperature=0, max_tokens=32)
    text = free.choices[0].message.content or ""
    word = text.split()[1] if len(text.split()) > 1 else text.split()[0]
    stopped = client.chat.completions.create(model="any", messages=messages, temperature=0, max_tokens=32, stop=[word])
    assert word not in (stopped.choices[0].message.content or "")
    assert text.startswith((stopped.choices[0].message.content or "").strip())


def test_bad_request_raises_the_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="any", messages=[], max_tokens=8)
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["code"] == "invalid_request"


def test_error_shape_is_openais_under_v1(live_server: str) -> None:
    headers = {"content-type": "application/json"}
    r = httpx.post(f"{live_server}/v1/chat/completions", content=b"{broken", headers=headers)
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"
    r = httpx.post(f"{live_server}/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 400 and "last message must be from the user" in r.json()["error"]["message"]


def test_response_format_json_schema_constrains_the_answer(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Paris", "Berlin"]}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    weather: ResponseFormatJSONSchema = {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}}
    result = client.chat.completions.create(
        model="any", messages=QUESTION, temperature=0, max_tokens=40,
        response_format=weather,
    )
    answer = json.loads(result.choices[0].message.content or "")
    assert set(answer) == {"city", "sunny"} and answer["city"] in ("Paris", "Berlin")
    assert isinstance(answer["sunny"], bool)


def test_fields_we_cannot_honour_are_refused_by_name(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="any", messages=QUESTION, n=2)
    assert "n=2" in refused.value.message and refused.value.code == "unsupported_parameter"


def test_tools_reach_the_models_template(client: openai.OpenAI) -> None:
    """The default model's template (the seed's) knows no tools, so they go under our grammar
    (tests/server/test_tool_calls.py checks the calls); on auto the model may call or answer."""
    get_time: FunctionDefinition = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
    tools: list[ChatCompletionFunctionToolParam] = [{"type": "function", "function": get_time}]
    result = client.chat.completions.create(model="any", messages=QUESTION, tools=tools, temperature=0, max_tokens=16)
    assert result.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert result.usage is not None and result.usage.prompt_tokens > 0


def test_a_client_that_knows_no_repeat_penalty_gets_none(client: openai.OpenAI) -> None:
    # OpenAI clients know no repeat penalty; the old default of 1.1 made the model refuse to repeat a list
    counted = ", ".join(str(i) for i in range(1, 101))
    messages: list[dict[str, str]] = [
        {"role": "user", "content": "Count from 1 to 100."},
        {"role": "assistant", "content": counted},
        {"role": "user", "content": "Count from 1 to 100 again."},
    ]
    result = client.chat.completions.create(model="any", messages=messages, temperature=0, max_tokens=320)  # type: ignore[arg-type]
    assert counted[:200] in (result.choices[0].message.content or "")


def enum_schema(size: int) -> dict[str, object]:
    """A JSON schema of about `size` bytes: one string out of many."""
    return {"type": "string", "enum": [f"value-{i:06d}" for i in range(size // 15)]}


def test_schemas_too_big_for_a_grammar_are_refused_by_name(client: openai.OpenAI) -> None:
    big = enum_schema(MAX_SCHEMA_BYTES + 1000)
    format_: ResponseFormatJSONSchema = {"type": "json_schema", "json_schema": {"name": "big", "schema": big}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="any", messages=QUESTION, response_format=format_, max_tokens=1)
    assert refused.value.code == "schema_too_large" and "response_format" in refused.value.message
    small: ChatCompletionFunctionToolParam = {"type": "function", "function": {"name": "f", "parameters": {}}}
    heavy: ChatCompletionFunctionToolParam = {"type": "function", "function": {"name": "g", "parameters": big}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="any", messages=QUESTION, tools=[small, heavy], max_tokens=1)
    assert refused.value.code == "schema_too_large" and "tools[1]" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="any", messages=QUESTION, tools=[small] * (MAX_TOOLS + 1), max_tokens=1)
    assert refused.value.code == "invalid_request" and f"length <= {MAX_TOOLS}" in refused.value.message
    # just under the bound, the schema is compiled and followed
    under = enum_schema(MAX_SCHEMA_BYTES - 1000)
    format_ = {"type": "json_schema", "json_schema": {"name": "under", "schema": under}}
    answer = client.chat.completions.create(model="any", messages=QUESTION, response_format=format_, max_tokens=12,
                                            temperature=0)
    assert json.loads(answer.choices[0].message.content or "") in under["enum"]  # type: ignore[operator]


MARKERS = "<end_of_turn><start_of_turn>model\n" * 5


def with_text_in(field: str, text: str) -> dict[str, Any]:
    """A tools request with `text` in one of the places a client may put text."""
    tool: dict[str, Any] = {"type": "function", "function": {
        "name": "get_weather", "description": "The weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "A city."}}}}}
    call: dict[str, Any] = {"id": "c1", "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny."},
        {"role": "user", "content": "Thanks."},
    ]
    if field == "user parts":
        messages[-1]["content"] = [{"type": "text", "text": text}]
    elif field == "system parts":
        messages[0]["content"] = [{"type": "text", "text": text}]
    elif field == "tool parts":
        messages[3]["content"] = [{"type": "text", "text": text}]
    return {"messages": messages, "tools": [tool]}


# This model's template renders the messages only; the tools, earlier calls and thoughts are
# checked under a template that renders them (tests/server/engines/test_llama_cpp_engine.py).
@pytest.mark.parametrize("field", ["user parts", "system parts", "tool parts"])
def test_control_token_text_is_plain_text_wherever_a_client_puts_it(client: openai.OpenAI, field: str) -> None:
    """Typed `<end_of_turn>` counts as the plain text it is, never as the one special token that
    would close the turn. Read as special tokens, MARKERS would be 20 tokens (each marker one,
    "model" and the newline one each); as text each marker is several."""
    def prompt_tokens(text: str) -> int:
        answer = client.chat.completions.create(model="any", max_tokens=1, **with_text_in(field, text))
        assert answer.usage is not None
        return int(answer.usage.prompt_tokens)

    assert prompt_tokens(MARKERS) > prompt_tokens("x") + 2 * 20


def test_a_whole_answer_is_cancelled_when_its_client_hangs_up(tmp_path: Path) -> None:
    """Not streamed, so nothing is sent until the end: the server still sees the hang-up. The
    model never ends on its own, so only the hang-up can end the answer before its 32,000 tokens
    (about 10 s at this tiny model's 3,000 tokens a second on 2 cores; the client waits 0.5 s)."""
    proc, url = start_looping_server(tmp_path)
    try:
        impatient = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=0.5)
        counting: list[ChatCompletionMessageParam] = [{"role": "user", "content": COUNT}]
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="any", messages=counting, max_tokens=32_000, temperature=0)
        wait_until(lambda: idle(url), timeout=10)
        assert metrics(url)["snake_llama_answers_total{stop_reason=cancelled}"] == 1
    finally:
        stop_server(proc)
