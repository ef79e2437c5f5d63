"""Tool calls under a grammar, for templates without tools: the logic, apart from any model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.engines.base import Piece, TemplateError, Text, ToolCall
from server.engines.grammar_tools import GrammarTools, as_chat
from wire.types import Message

WEATHER: dict[str, Any] = {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME: dict[str, Any] = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
TOOLS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": TIME}]


def test_tool_choice_narrows_the_tools() -> None:
    assert GrammarTools.of({"tools": TOOLS}) == GrammarTools((WEATHER, TIME), False)
    assert GrammarTools.of({"tools": TOOLS, "tool_choice": "required"}) == GrammarTools((WEATHER, TIME), True)
    named = {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
    assert GrammarTools.of(named) == GrammarTools((TIME,), True)
    assert GrammarTools.of({"tools": TOOLS, "tool_choice": "none"}) is None
    assert GrammarTools.of({"tools": []}) is None
    with pytest.raises(TemplateError, match="'get_date'"):
        GrammarTools.of({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_date"}}})


def test_the_grammar_allows_a_call_or_text_unless_a_call_is_required() -> None:
    auto, required = GrammarTools((WEATHER,), False).grammar(), GrammarTools((WEATHER,), True).grammar()
    assert auto.startswith("%llguidance {}\nstart: call | text\ntext: /[^{]")
    assert required.startswith("%llguidance {}\nstart: call\ncall: %json ")
    call = json.loads(required.split("%json ", 1)[1])
    assert call["properties"]["tool"] == {"const": "get_weather"}
    assert call["properties"]["arguments"]["additionalProperties"] is False  # closed where it did not say
    both = json.loads(GrammarTools((WEATHER, TIME), True).grammar().split("%json ", 1)[1])
    assert [c["properties"]["tool"]["const"] for c in both["anyOf"]] == ["get_weather", "get_time"]
    formatted = GrammarTools((WEATHER,), False).grammar({"type": "object"})
    assert 'text: %json {"type": "object"}' in formatted


def test_the_system_prompt_describes_the_tools_after_the_clients() -> None:
    system = GrammarTools((WEATHER,), False).system("Be brief.")
    assert system.startswith("Be brief.\n\nYou can call these tools:\n- get_weather: The weather in a city")
    assert '{"tool": "get_weather", "arguments": {"city": "..."}}' in system and "Otherwise answer in words" in system
    assert "Otherwise" not in GrammarTools((WEATHER,), True).system("")


def test_calls_and_results_go_back_as_readable_turns() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    chat, system = as_chat([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    ])
    assert system == "Be brief."
    assert chat == [
        Message(True, "Weather in Paris?"),
        Message(False, '{"tool": "get_weather", "arguments": {"city": "Paris"}}'),
        Message(True, "Result of get_weather: Sunny"),
    ]


def test_an_answer_opening_with_a_brace_is_held_and_becomes_a_call() -> None:
    tools = GrammarTools((WEATHER,), False)
    pieces: list[Piece] = [Text('{"tool": "get_weather", '), Text('"arguments": {"city": "Paris"}}')]
    [call] = list(tools.pieces(iter(pieces)))
    assert isinstance(call, ToolCall)
    assert call.call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert call.call["id"].startswith("call_") and call.call["type"] == "function"
    assert list(tools.pieces(iter([Text("Sunny"), Text(" {x}")]))) == [Text("Sunny"), Text(" {x}")]
    cut = [Text('{"tool": "get_weather", "argu')]  # the answer ran out of tokens mid-call
    assert list(tools.pieces(iter(cut))) == [Text('{"tool": "get_weather", "argu')]
    unknown = [Text('{"tool": "get_date", "arguments": {}}')]
    assert list(tools.pieces(iter(unknown))) == unknown


def test_closing_the_pieces_closes_the_answer_under_them() -> None:
    closed: list[bool] = []

    def answer() -> Any:
        try:
            yield Text("Hello")
            yield Text(" world")
        finally:
            closed.append(True)

    pieces = GrammarTools((WEATHER,), False).pieces(answer())
    assert next(pieces) == Text("Hello")
    pieces.close()
    assert closed == [True]
