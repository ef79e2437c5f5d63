"""Tools on our own API: a chat offers tools, the model calls one, and the page asks again with the
result, on a tiny model that calls `get_time` whenever tools are offered (server.tool_chat)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from server.errors import ApiError
from server.tool_chat import rounds_so_far, tool_request
from tests import tinymodels as tm
from tests.harness import answer_of, chat, converse, start_grammar_tool_server, stop_server
from wire.types import Message, ToolSpec, ToolUse

ROUNDS = 2
GET_TIME = {"name": "get_time", "description": "The time now", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_grammar_tool_server(tmp_path_factory.mktemp("tool-chat"), MAX_TOOL_ROUNDS=str(ROUNDS))
    yield url
    stop_server(proc)


def calls_in(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [data for name, data in events if name == "tool_call"]


def round_of(call: dict[str, Any], result: str, is_error: bool = False) -> dict[str, Any]:
    """The model's message of a round: its call, with what came of it."""
    use = {**call, "result": result, "is_error": is_error}
    return {"user": False, "text": "", "calls": [use]}


def ask(url: str, *rounds: dict[str, Any]) -> list[tuple[str, Any]]:
    body = chat("What time is it?")
    body["conversation"]["messages"] += rounds
    status, events = converse(url, {**body, "tools": [GET_TIME]})
    assert status == 200, events
    return events


def test_a_call_comes_as_an_event_of_its_own(caller: str) -> None:
    events = ask(caller)
    [call] = calls_in(events)
    assert call["name"] == "get_time" and json.loads(call["arguments"]) == tm.TOOL_ARGUMENTS and call["id"]
    assert answer_of(events) == "" and events[-1][0] == "done"


def test_results_reach_the_prompt_and_rounds_are_bounded(caller: str) -> None:
    [call] = calls_in(ask(caller))
    short, long = "12:00", "12:00:00.000000+00:00"  # no spaces: the vocabulary spells one in 3 bytes
    second = ask(caller, round_of(call, short))
    assert calls_in(second), "a round short of MAX_TOOL_ROUNDS may call again"
    done = second[-1][1]
    longer = ask(caller, round_of(call, long))[-1][1]
    # the tiny model reads a byte a token: the result's own bytes are what the prompt grew by
    assert longer["prompt_tokens"] - done["prompt_tokens"] == len(long) - len(short)
    failed = ask(caller, round_of(call, short, is_error=True))[-1][1]
    assert failed["prompt_tokens"] - done["prompt_tokens"] == len("Error: ") + 2  # its space, as 3 bytes
    last = ask(caller, *[round_of(call, short)] * ROUNDS)
    assert not calls_in(last) and answer_of(last) == tm.GRAMMAR_CALL  # tools off: what it writes is text


def test_calls_in_the_history_are_read_without_tools_offered(caller: str) -> None:
    [call] = calls_in(ask(caller))
    body = chat("What time is it?")
    body["conversation"]["messages"] += [round_of(call, "12:00"), {"user": False, "text": "It is noon."},
                                         {"user": True, "text": "Thanks"}]
    status, events = converse(caller, body)
    assert status == 200 and not calls_in(events) and answer_of(events) == tm.GRAMMAR_CALL


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b["conversation"]["messages"].append({"user": False, "text": "Hm"}), "the last message must be"),
        (lambda b: b["tools"][0].update(parameters={"description": "x" * 40_000}), "schema_too_large"),
        (lambda b: b["tools"][0].update(name="get time"), "tools[0].name"),
        (lambda b: b["tools"].extend([GET_TIME] * 128), "tools"),
    ],
)
def test_a_bad_tool_chat_is_a_400_that_says_why(caller: str, change: Any, words: str) -> None:
    body = {**chat("What time is it?"), "tools": [dict(GET_TIME)]}
    change(body)
    status, events = converse(caller, body)
    assert status == 400 and words in json.dumps(events[0][1])


def test_rounds_count_the_models_messages_with_calls_since_the_user_spoke() -> None:
    use = ToolUse("c1", "get_time", "{}", "12:00")
    said = Message(False, "", calls=[use])
    assert rounds_so_far([Message(True, "a"), said, Message(True, "b"), said, said]) == 2
    assert rounds_so_far([Message(True, "a")]) == 0
    request = tool_request([Message(True, "a"), said], "Be brief.", [ToolSpec("get_time")], max_rounds=1)
    assert request["tool_choice"] == "none" and request["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "tool"]
    assert request["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "12:00"}
    with pytest.raises(ApiError, match="last message"):
        tool_request([Message(True, "a"), Message(False, "b")], None, [], 8)
