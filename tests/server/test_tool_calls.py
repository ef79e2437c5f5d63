"""A model's tool call through each front door, by each door's own client library, on a tiny model
whose template llama.cpp knows for tools and which always calls `get_time`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import ollama
import openai
import pytest
from anthropic.types import ToolParam, ToolUseBlock
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests import tinymodels as tm
from tests.harness import start_grammar_tool_server, start_tool_server, stop_server

SCHEMA: dict[str, object] = {"type": "object", "properties": {"zone": {"type": "string"}}}
OPENAI_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function", "function": {"name": "get_time", "description": "The time now", "parameters": SCHEMA}
}


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_tool_server(tmp_path_factory.mktemp("caller"))
    yield url
    stop_server(proc)


def test_openai_clients_get_tool_calls_whole_and_streamed(caller: str) -> None:
    client = openai.OpenAI(base_url=f"{caller}/v1", api_key="unused", max_retries=0)
    asked: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Time?"}]
    whole = client.chat.completions.create(model="any", messages=asked, tools=[OPENAI_TOOL], max_tokens=60)
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_time"
    assert json.loads(call.function.arguments) == tm.TOOL_ARGUMENTS
    chunks = list(client.chat.completions.create(model="any", messages=asked, tools=[OPENAI_TOOL], max_tokens=60,
                                                 stream=True))
    streamed = [c for chunk in chunks for c in chunk.choices[0].delta.tool_calls or []] if chunks else []
    assert [(c.function.name, json.loads(c.function.arguments or "")) for c in streamed if c.function] == [
        ("get_time", tm.TOOL_ARGUMENTS)
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_ollama_clients_get_tool_calls_whole_and_streamed(caller: str) -> None:
    client = ollama.Client(host=caller)
    asked = [{"role": "user", "content": "Time?"}]
    whole = client.chat(model="caller.gguf", messages=asked, tools=[dict(OPENAI_TOOL)], options={"temperature": 0})
    calls = whole.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("get_time", tm.TOOL_ARGUMENTS)]
    assert whole.done and not whole.message.content
    parts = list(client.chat(model="caller.gguf", messages=asked, tools=[dict(OPENAI_TOOL)], stream=True,
                             options={"temperature": 0}))
    streamed = [c for p in parts for c in p.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed] == [("get_time", tm.TOOL_ARGUMENTS)]
    assert parts[-1].done


def test_anthropic_clients_get_tool_use_whole_and_streamed(caller: str) -> None:
    client = anthropic.Anthropic(base_url=caller, api_key="unused", max_retries=0)
    tool: anthropic.types.ToolParam = {"name": "get_time", "description": "The time now", "input_schema": SCHEMA}
    asked: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Time?"}]
    whole = client.messages.create(model="any", max_tokens=60, messages=asked, tools=[tool])
    assert whole.stop_reason == "tool_use"
    [use] = [b for b in whole.content if isinstance(b, ToolUseBlock)]
    assert use.name == "get_time" and use.input == tm.TOOL_ARGUMENTS and use.id
    with client.messages.stream(model="any", max_tokens=60, messages=asked, tools=[tool]) as stream:
        final = stream.get_final_message()
    [streamed] = [b for b in final.content if isinstance(b, ToolUseBlock)]
    assert (streamed.name, streamed.input) == ("get_time", tm.TOOL_ARGUMENTS) and final.stop_reason == "tool_use"
    # the call and its result go back, and the model answers on (here: by calling again)
    again = client.messages.create(model="any", max_tokens=60, tools=[tool], messages=[
        *asked,
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "12:00"}]},
    ])
    assert again.stop_reason == "tool_use" and again.usage.input_tokens > whole.usage.input_tokens


# -- templates without tools: calls under a grammar (server.engines.grammar_tools) -------------

WEATHER: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}
PARIS: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What's the weather in Paris?"}]
MARKERS = ("<|im_end|>", "<|im_start|>", "<end_of_turn>", "### Human", "### Assistant")


@pytest.fixture(scope="module")
def default(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


def city_of(call: Any) -> object:
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city"}  # the schema's one argument, and nothing else
    return arguments["city"]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_required_or_named_tool_is_called_by_a_model_without_tool_template(
    default: openai.OpenAI, choice: Any
) -> None:
    whole = default.chat.completions.create(model="any", messages=PARIS, tools=[WEATHER], tool_choice=choice,
                                            max_tokens=60, temperature=0)
    [call] = whole.choices[0].message.tool_calls or []
    assert whole.choices[0].finish_reason == "tool_calls" and call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(city_of(call), str) and call.id.startswith("call_")
    chunks = list(default.chat.completions.create(model="any", messages=PARIS, tools=[WEATHER], tool_choice=choice,
                                                  max_tokens=60, temperature=0, stream=True))
    streamed = [c for chunk in chunks for c in chunk.choices[0].delta.tool_calls or []]
    assert [c.function.name for c in streamed if c.function] == ["get_weather"]
    assert not any(chunk.choices[0].delta.content for chunk in chunks)  # a call, never its JSON as text
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_with_tools_on_auto_a_plain_answer_leaks_no_markers(default: openai.OpenAI) -> None:
    asked: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
    result = default.chat.completions.create(model="any", messages=asked, tools=[WEATHER], max_tokens=60,
                                             temperature=0)
    text = result.choices[0].message.content or ""
    assert result.choices[0].finish_reason == "stop" and text.strip()
    assert not any(marker in text for marker in MARKERS)


def test_a_tool_result_goes_back_as_a_readable_turn(default: openai.OpenAI) -> None:
    first = default.chat.completions.create(model="any", messages=PARIS, tools=[WEATHER], tool_choice="required",
                                            max_tokens=60, temperature=0)
    [call] = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    arguments = call.function.arguments
    history: list[ChatCompletionMessageParam] = [
        *PARIS,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees"},
    ]
    answer = default.chat.completions.create(model="any", messages=history, tools=[WEATHER], tool_choice="none",
                                             max_tokens=60, temperature=0)
    text = answer.choices[0].message.content or ""
    assert text.strip() and not any(marker in text for marker in MARKERS)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason in ("stop", "length")


def test_anthropic_any_tool_choice_is_a_tool_use_on_a_model_without_tool_template(live_server: str) -> None:
    client = anthropic.Anthropic(base_url=live_server, api_key="unused", max_retries=0)
    tool: ToolParam = {"name": "get_weather", "description": "The current weather in a city",
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    reply = client.messages.create(model="any", max_tokens=60, tools=[tool], tool_choice={"type": "any"},
                                   messages=[{"role": "user", "content": "What's the weather in Paris?"}],
                                   extra_body={"temperature": 0})
    [use] = [b for b in reply.content if isinstance(b, ToolUseBlock)]
    assert use.name == "get_weather" and set(use.input) <= {"city"} and reply.stop_reason == "tool_use"


@pytest.fixture(scope="module")
def grammar_caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny model on the seed's template (no tools in it) that answers with a call of `get_time`."""
    proc, url = start_grammar_tool_server(tmp_path_factory.mktemp("grammar"))
    yield url
    stop_server(proc)


def test_a_model_may_choose_to_call_on_auto(grammar_caller: str) -> None:
    client = openai.OpenAI(base_url=f"{grammar_caller}/v1", api_key="unused", max_retries=0)
    asked: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Time?"}]
    whole = client.chat.completions.create(model="any", messages=asked, tools=[OPENAI_TOOL], max_tokens=60)
    [call] = whole.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_time", tm.TOOL_ARGUMENTS)
    assert whole.choices[0].message.content is None
    plain = client.chat.completions.create(model="any", messages=asked, max_tokens=60)  # no tools: its JSON is text
    assert plain.choices[0].message.content == tm.GRAMMAR_CALL
    parts = list(ollama.Client(host=grammar_caller).chat(
        model="caller.gguf", messages=[{"role": "user", "content": "Time?"}], tools=[OPENAI_TOOL], stream=True))
    assert [(c.function.name, dict(c.function.arguments)) for p in parts for c in p.message.tool_calls or []] == [
        ("get_time", tm.TOOL_ARGUMENTS)
    ]
