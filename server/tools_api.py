"""Our API's tools: `GET /api/tools` (the built-in ones and every running MCP server's) and
`POST /api/tools/call`."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from server.bodies import body_of
from server.errors import ApiError
from server.mcp_servers import McpServers, UnknownTool
from wire.routes import CALL_TOOL, TOOLS
from wire.types import BUILTIN_TOOLS, ToolCallResult, ToolInfo, ToolList


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
    body = await body_of(request, CALL_TOOL)
    try:
        result = await servers_of(request).call(body.server, body.name, body.arguments)
    except UnknownTool as exc:
        raise ApiError(404, "tool_not_found", str(exc)) from exc
    return json_response(ToolCallResult(result.text, result.is_error))


ROUTES = ((TOOLS, list_tools), (CALL_TOOL, call_tool))
