"""An MCP server for the tests, made with the official SDK: `python -m tests.mcp_server` serves
stdio, `python -m tests.mcp_server http PORT` Streamable HTTP on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("snake_llama tests")


@server.tool(description="Gives back the text it is given, shouting.")
def shout(text: str) -> str:
    return text.upper()


@server.tool(description="The time now in a time zone.")
async def get_time(zone: str) -> str:
    if os.environ.get("STUCK_CLOCK"):  # a server whose clock never answers, for Stop and timeouts
        await asyncio.Event().wait()
    return f"12:00 in {zone}"  # fixed, so a test can look for it where the model reads it


@server.tool(description="Always fails.")
def broken() -> str:
    raise RuntimeError("the disk is on fire")


@server.tool(description="Never answers.")
async def hang() -> str:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:  # the caller gave up: say so where a test can see it
        if os.environ.get("CANCELLED_MARK"):
            Path(os.environ["CANCELLED_MARK"]).touch()
        raise
    return ""


MCP_TOOLS = ("shout", "get_time", "broken", "hang")  # what this server offers, in order


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
