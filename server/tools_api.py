"""Our API's tools: `GET /api/tools` (the built-in ones and every running MCP server's) and
`POST /api/tools/call`."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.bodies import body_of, hung_up
from server.errors import ApiError
from server.mcp_servers import McpServers, UnknownTool
from wire.routes import CALL_TOOL, TOOLS
from wire.types import BUILTIN_TOOLS, ToolCallResult, ToolInfo, ToolList

HUNG_UP = "the client hung up before the tool answered"


def servers_of(request: Request) -> McpServers:
    servers: McpServers = request.app.state.mcp
    return servers


def json_response(value: object) -> Response:
    return Response(msgspec.json.encode(value), media_type="application/json")


async def list_tools(request: Request) -> Response:
    """The built-in tools (which the page runs itself), then every MCP server's."""
    listed = [ToolInfo(**tool) for tool in servers_of(request).listing()]
    return json_response(ToolList([*BUILTIN_TOOLS, *listed]))


async def call_tool(request: Request) -> Response:
    """Run a tool; a client that hangs up first (the page's Stop) cancels the call."""
    body = await body_of(request, CALL_TOOL)
    call = asyncio.ensure_future(servers_of(request).call(body.server, body.name, body.arguments))
    gone = asyncio.ensure_future(hung_up(request))
    try:
        await asyncio.wait((call, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not call.done():
            call.cancel()  # nobody waits for its result
    if call.cancelled():
        return json_response(ToolCallResult(HUNG_UP, True))  # to nobody: the client has gone
    try:
        result = call.result()
    except UnknownTool as exc:
        raise ApiError(404, "tool_not_found", str(exc)) from exc
    return json_response(ToolCallResult(result.text, result.is_error))


ROUTES = ((TOOLS, list_tools), (CALL_TOOL, call_tool))
