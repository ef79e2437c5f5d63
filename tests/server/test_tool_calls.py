"""A model's tool call through each front door, by each door's own client library, on a tiny model
whose template llama.cpp knows for tools and which always calls `get_time`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import ollama
import openai
import pytest
from anthropic.types import ToolUseBlock
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests import tinymodels as tm
from tests.harness import start_tool_server, stop_server

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
