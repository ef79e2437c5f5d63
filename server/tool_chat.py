"""A conversation of our API with tools, as the OpenAI chat request the engines render for tools.

The page offers the tools the user turned on in a chat, runs the calls the user allows, and asks
again with each call's result on the model's message; the answer goes on from there. Rounds of
calls within one answer are bounded: past `max_rounds`, the tools stay described but the model
may only answer in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.bodies import check_schema_size
from server.errors import ApiError
from server.images import image_parts
from wire.types import Message, ToolSpec

ERROR = "Error: "  # how a failed or refused call's result reads to the model


def has_tools(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> bool:
    """The conversation needs the tool path: tools offered, or calls in its history."""
    return bool(tools) or any(m.calls for m in messages)


def rounds_so_far(messages: Sequence[Message]) -> int:
    """The rounds of calls the answer being written has made: the model's messages with calls
    since the last user message."""
    rounds = 0
    for m in reversed(messages):
        if m.user:
            break
        rounds += bool(m.calls)
    return rounds


def tool_request(
    messages: Sequence[Message], system: str | None, tools: Sequence[ToolSpec], max_rounds: int
) -> dict[str, Any]:
    """The OpenAI chat request (messages, tools, tool_choice) that `messages` amount to; a 400 for
    a conversation that asks nothing (its last message neither the user's nor a round of calls)."""
    if not messages[-1].user and not messages[-1].calls:
        raise ApiError(400, "invalid_request", "the last message must be the user's, or the model's with tool calls")
    for i, tool in enumerate(tools):
        check_schema_size(f"tools[{i}]", tool.parameters)
    chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system and system.strip() else []
    for m in messages:
        chat += _turns(m)
    request: dict[str, Any] = {"messages": chat}
    if tools:
        request["tools"] = [{"type": "function", "function": _function(t)} for t in tools]
        request["tool_choice"] = "none" if rounds_so_far(messages) >= max_rounds else "auto"
    return request


def _turns(m: Message) -> list[dict[str, Any]]:
    if m.user:
        return [{"role": "user", "content": image_parts(m.text, m.images)}]
    said: dict[str, Any] = {"role": "assistant", "content": m.text}
    if m.thoughts:
        said["reasoning_content"] = m.thoughts
    if not m.calls:
        return [said]
    said["tool_calls"] = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in m.calls
    ]
    results = [
        {"role": "tool", "tool_call_id": c.id, "content": ERROR + c.result if c.is_error else c.result}
        for c in m.calls
    ]
    return [said, *results]


def _function(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters or {"type": "object"}}
