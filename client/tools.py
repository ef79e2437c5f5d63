"""The tools a chat offers the model: which ones, by what names, and running a call the user allowed.

The server lists them (`GET /api/tools`): the built-in ones, which the page runs itself (Python,
in a sandbox of its own), then its MCP servers' tools, which it runs when the page asks
(`POST /api/tools/call`). A chat turns tools on by key ("server/name"); the model calls each by
its own name or, where two tools on at once share one, by its server's name and its own.

No DOM here: the page hands in how to run Python, and tests hand in fakes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from client.attachments import Attachment
from client.rpc import Client
from wire.types import BUILTIN, SYSTEM_MAX, ToolCallRequest, ToolCallResult, ToolInfo, ToolList, ToolSpec

RunPython = Callable[[str, tuple[Attachment, ...]], Awaitable[ToolCallResult]]  # code, the chat's files
NOT_ON = "No tool named {name} is on in this chat."
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def key(tool: ToolInfo) -> str:
    return f"{tool.server}/{tool.name}"


def by_server(listing: ToolList | None) -> list[tuple[str, list[ToolInfo]]]:
    """The tools listed, grouped by server in the order the server gives them (the built-in ones first)."""
    groups: dict[str, list[ToolInfo]] = {}
    for tool in listing.tools if listing is not None else ():
        groups.setdefault(tool.server, []).append(tool)
    return list(groups.items())


def _model_name(name: str) -> str:
    return _NOT_A_NAME.sub("_", name)[:64] or "tool"


def offered(listing: ToolList | None, keys: tuple[str, ...]) -> dict[str, ToolInfo]:
    """The tools on among `keys` that the server still lists, by the name the model calls each by."""
    tools = [t for t in (listing.tools if listing is not None else ()) if key(t) in keys]
    shared = Counter(_model_name(t.name) for t in tools)
    return {
        _model_name(t.name if shared[_model_name(t.name)] == 1 else f"{t.server}_{t.name}"): t for t in tools
    }


def specs(tools: dict[str, ToolInfo]) -> tuple[ToolSpec, ...]:
    """The tools as the model is offered them."""
    return tuple(ToolSpec(name, t.description[:SYSTEM_MAX], t.input_schema) for name, t in tools.items())


def arguments_of(text: str) -> dict[str, Any]:
    """A call's arguments as the model wrote them (JSON); ValueError, in words, if they are not an object."""
    try:
        arguments = json.loads(text or "{}")
    except ValueError as exc:
        raise ValueError(f"The arguments are not JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise ValueError("The arguments must be a JSON object.")
    return arguments


def code_of(arguments: dict[str, Any]) -> str:
    code = arguments.get("code")
    if not isinstance(code, str) or not code.strip():
        raise ValueError('The python tool takes {"code": "..."}: the Python code to run.')
    return code


async def run(
    client: Client, run_python: RunPython, tool: ToolInfo | None, name: str, text: str,
    files: tuple[Attachment, ...] = (),
) -> ToolCallResult:
    """Run the call of `tool` (None: the model named no tool that is on) with the arguments `text`
    (Python, with the chat's `files` in its folder); every failure is an error result, which the
    model reads and may answer."""
    if tool is None:
        return ToolCallResult(NOT_ON.format(name=name), True)
    try:
        arguments = arguments_of(text)
        if tool.server == BUILTIN:
            return await run_python(code_of(arguments), files)
    except ValueError as exc:
        return ToolCallResult(str(exc), True)
    return await client.call_tool(ToolCallRequest(tool.server, tool.name, arguments))
