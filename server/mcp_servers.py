"""MCP servers named in `MCP_CONFIG`, through the official `mcp` SDK: their tools, and calls of them.

The file has the `mcpServers` format of Claude Desktop, LM Studio and Cursor: each server is a
command to run (stdio: `command`, `args`, `env`) or a URL (Streamable HTTP: `url`, `headers`).
Servers start with ours, each in a task of its own (the SDK's connections live in anyio task
groups, which must be left in the task that entered them), and stop with ours. One that fails
to start is one warning line naming it; the others still serve.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct

log = logging.getLogger("snake_llama")
START_TIMEOUT_S = 30.0  # a server that has not listed its tools by then is not started
STOP_TIMEOUT_S = 5.0


class StdioServer(Struct, forbid_unknown_fields=True):
    command: str
    args: list[str] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    type: str | None = None  # "stdio", as some editors write it


class HttpServer(Struct, forbid_unknown_fields=True):
    url: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    type: str | None = None  # "http" or "streamable-http"


ServerConfig = StdioServer | HttpServer


class ConfigError(ValueError):
    """MCP_CONFIG cannot be used: the message names the file and what is wrong."""


def read_config(path: str) -> dict[str, ServerConfig]:
    """The servers an `mcpServers` file names; ConfigError says what is wrong with it."""
    try:
        raw = msgspec.json.decode(Path(path).expanduser().read_bytes(), type=dict[str, dict[str, dict[str, Any]]])
    except OSError as exc:
        raise ConfigError(f"MCP_CONFIG={path}: cannot read it ({exc.strerror})") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"MCP_CONFIG={path}: not an mcpServers file ({exc})") from exc
    if set(raw) != {"mcpServers"}:
        raise ConfigError(f"MCP_CONFIG={path}: the file holds one object, mcpServers")
    servers: dict[str, ServerConfig] = {}
    for name, entry in raw["mcpServers"].items():
        kind: type[ServerConfig] = StdioServer if "command" in entry else HttpServer
        if "command" not in entry and "url" not in entry:
            raise ConfigError(f"MCP_CONFIG={path}: server {name!r} needs a command or a url")
        try:
            servers[name] = msgspec.convert(entry, kind)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"MCP_CONFIG={path}: server {name!r}: {exc}") from exc
    return servers


@dataclass(frozen=True)
class ToolResult:
    """What a tool gave: its text, and whether it is an error (the model sees both alike)."""

    text: str
    is_error: bool


class UnknownTool(LookupError):
    """No running server has that tool."""


def reason(exc: BaseException) -> str:
    """The first real cause in an exception (the SDK's task groups wrap them in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class McpServers:
    def __init__(self, servers: dict[str, ServerConfig], call_timeout_s: float) -> None:
        self.servers = servers
        self.call_timeout_s = call_timeout_s
        self._clients: dict[str, Any] = {}  # name -> mcp.Client, while its server runs
        self._tools: dict[str, list[Any]] = {}  # name -> its tools, as listed at start
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(n, s), name=f"MCP {n}") for n, s in self.servers.items()]

    async def stop(self) -> None:
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in late:
                task.cancel()

    async def _run(self, name: str, server: ServerConfig) -> None:
        import mcp

        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(mcp.Client(await self._target(server, stack)))
                listed = await asyncio.wait_for(client.list_tools(), START_TIMEOUT_S)
                self._clients[name], self._tools[name] = client, list(listed.tools)
                log.info("MCP server %s started: %d tools", name, len(listed.tools))
                await self._stopping.wait()
        except Exception as exc:
            if not self._stopping.is_set():
                log.warning("MCP server %s did not start or stopped: %s", name, reason(exc))
        finally:
            self._clients.pop(name, None)
            self._tools.pop(name, None)

    @staticmethod
    async def _target(server: ServerConfig, stack: AsyncExitStack) -> Any:
        from mcp import StdioServerParameters

        if isinstance(server, StdioServer):
            return StdioServerParameters(command=server.command, args=server.args, env=server.env or None)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = await stack.enter_async_context(httpx2.AsyncClient(headers=server.headers, timeout=START_TIMEOUT_S))
        return streamable_http_client(server.url, http_client=http)

    def listing(self) -> list[dict[str, Any]]:
        """Every running server's tools: its name, the tool's name, description and schema."""
        return [
            {"server": name, "name": t.name, "description": t.description or "", "input_schema": t.input_schema}
            for name, tools in self._tools.items() for t in tools
        ]

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Run a tool. A tool that fails, hangs past TOOL_TIMEOUT_S or whose server is gone gives
        an error result, which the model reads as it reads any result."""
        client = self._clients.get(server)
        if client is None or all(t.name != tool for t in self._tools.get(server, ())):
            raise UnknownTool(f"no tool {tool!r} on a running MCP server {server!r}: GET /api/tools lists them")
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), self.call_timeout_s)
        except TimeoutError:
            return ToolResult(f"{tool} did not answer within {self.call_timeout_s:g} s", True)
        except Exception as exc:
            return ToolResult(f"{tool} failed: {reason(exc)}", True)
        text = "\n".join(getattr(block, "text", "") for block in result.content if getattr(block, "type", "") == "text")
        return ToolResult(text, bool(result.is_error))
