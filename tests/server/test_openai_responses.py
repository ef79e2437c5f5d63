"""OpenAI's Responses API (`/v1/responses`), driven by the official `openai` client: on the real
default model, and on a tiny model that always calls `get_time` for the function-call round trip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import FunctionToolParam, ResponseInputParam

from tests import tinymodels as tm
from tests.harness import start_thinking_server, start_tool_server, stop_server

QUESTION = "What is the capital of Germany?"
COUNTING = "Count from 1 to 20, separated by commas."
GET_TIME: FunctionToolParam = {
    "type": "function", "name": "get_time", "description": "The time now", "strict": False,
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


def test_a_string_input_gets_a_completed_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model="any", input=QUESTION, max_output_tokens=32, temperature=0,
                                       metadata={"ticket": "7"})
    assert response.object == "response" and response.status in ("completed", "incomplete")
    assert response.model == "gemma-3-270m-q4_k_m.gguf" and response.metadata == {"ticket": "7"}
    [message] = response.output
    assert message.type == "message" and response.output_text.strip()
    assert "<end_of_turn>" not in response.output_text
    assert response.usage is not None and response.usage.output_tokens >= 1
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_streamed_and_whole_agree(client: openai.OpenAI) -> None:
    args: dict[str, Any] = {"model": "any", "input": COUNTING, "max_output_tokens": 40, "temperature": 0}
    client.responses.create(**args)  # both compared runs then read the prompt from the cache: no near tie tips
    whole = client.responses.create(**args)
    with client.responses.stream(**args) as stream:
        events = list(stream)
    # the last event holds the response: completed, or incomplete where the answer ran to its limit
    # (the greedy answer may, or may not, stop by itself within 40 tokens)
    last = events[-1]
    assert last.type in ("response.completed", "response.incomplete")
    final = last.response
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert final.status == whole.status
    assert "".join(deltas) == final.output_text == whole.output_text
    assert final.usage is not None and whole.usage is not None
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_a_cut_answer_is_incomplete_in_either_shape(client: openai.OpenAI) -> None:
    whole = client.responses.create(model="any", input=COUNTING, max_output_tokens=3, temperature=0)
    assert whole.status == "incomplete" and whole.incomplete_details is not None
    assert whole.incomplete_details.reason == "max_output_tokens"
    events = list(client.responses.create(model="any", input=COUNTING, max_output_tokens=3, temperature=0,
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.incomplete"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_instructions_and_items_make_the_chat(client: openai.OpenAI) -> None:
    """The instructions are the system prompt and earlier turns are the history: told to repeat a
    word, the model repeats it, and the earlier answer is there to be read."""
    history: ResponseInputParam = [
        {"role": "user", "content": "Say the word 'pineapple'."},
        {"role": "assistant", "content": "pineapple"},
        {"role": "user", "content": [{"type": "input_text", "text": "Say it again, exactly as before."}]},
    ]
    alone = client.responses.create(model="any", input="Say it again, exactly as before.", max_output_tokens=16,
                                    temperature=0)
    chat = client.responses.create(model="any", input=history, instructions="Answer with one word.",
                                   max_output_tokens=16, temperature=0)
    assert chat.instructions == "Answer with one word."
    assert chat.usage is not None and alone.usage is not None
    assert chat.usage.input_tokens > alone.usage.input_tokens + 10
    assert "pineapple" in chat.output_text.lower()


def test_text_format_json_schema_constrains_the_answer(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "Berlin"]}}, "required": ["city"],
              "additionalProperties": False}
    response = client.responses.create(
        model="any", input=QUESTION, max_output_tokens=40, temperature=0,
        text={"format": {"type": "json_schema", "name": "city", "schema": schema}},
    )
    assert json.loads(response.output_text)["city"] in ("Paris", "Berlin")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "web_search"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}]}, "input_image"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ],
)
def test_what_does_not_map_onto_a_chat_is_refused_by_name(
    client: openai.OpenAI, extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(**{"model": "any", "input": QUESTION, "max_output_tokens": 8, **extra})
    assert named in refused.value.message


@pytest.mark.parametrize("body", [b"{", b"{}", b'{"input": 5}', b'{"input": "x", "max_output_tokens": 0}'])
def test_bad_bodies_get_openais_error_shape(live_server: str, body: bytes) -> None:
    r = httpx.post(f"{live_server}/v1/responses", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "code", "param"}


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    proc, url = start_tool_server(tmp_path_factory.mktemp("caller"))
    yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    stop_server(proc)


def test_a_function_call_round_trip_whole_and_streamed(caller: openai.OpenAI) -> None:
    whole = caller.responses.create(model="any", input="Time?", tools=[GET_TIME], max_output_tokens=60)
    [call] = [item for item in whole.output if item.type == "function_call"]
    assert call.name == "get_time" and json.loads(call.arguments) == tm.TOOL_ARGUMENTS and call.call_id
    with caller.responses.stream(model="any", input="Time?", tools=[GET_TIME], max_output_tokens=60) as stream:
        done = [e.arguments for e in stream if e.type == "response.function_call_arguments.done"]
        final = stream.get_final_response()
    assert [json.loads(a) for a in done] == [tm.TOOL_ARGUMENTS]
    assert [(i.type, getattr(i, "name", None)) for i in final.output] == [("function_call", "get_time")]

    # the call and its output go back as items (the earlier output as it came), and the model goes on
    items: list[Any] = [  # output items as the client gives them back: plain dicts
        {"role": "user", "content": "Time?"},
        *[item.model_dump(exclude_none=True) for item in whole.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "12:00"},
    ]
    again = caller.responses.create(model="any", input=items, tools=[GET_TIME], max_output_tokens=60)
    assert again.usage is not None and whole.usage is not None
    assert again.usage.input_tokens > whole.usage.input_tokens
    assert any(item.type == "function_call" for item in again.output)


def test_a_thinking_models_thoughts_are_a_reasoning_item(tmp_path: Path) -> None:
    proc, url = start_thinking_server(tmp_path)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        whole = client.responses.create(model="any", input=QUESTION, max_output_tokens=40, temperature=0)
        reasoning, message = whole.output
        assert reasoning.type == "reasoning" and [c.text for c in reasoning.content or []] == [tm.THOUGHTS]
        assert message.type == "message" and whole.output_text == tm.ANSWER
        with client.responses.stream(model="any", input=QUESTION, max_output_tokens=40, temperature=0) as stream:
            thought = "".join(e.delta for e in stream if e.type == "response.reasoning_text.delta")
            final = stream.get_final_response()
        assert thought == tm.THOUGHTS and final.output_text == tm.ANSWER
        # given back, the thoughts go with the answer after them (the template decides whether the model reads them)
        items: list[Any] = [
            {"role": "user", "content": QUESTION},
            *[item.model_dump(exclude_none=True) for item in whole.output],
            {"role": "user", "content": "And of Spain?"},
        ]
        assert client.responses.create(model="any", input=items, max_output_tokens=40).output_text == tm.ANSWER
    finally:
        stop_server(proc)
