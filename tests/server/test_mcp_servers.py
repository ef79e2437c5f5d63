"""MCP servers from MCP_CONFIG, on the real server: one over stdio and one over Streamable HTTP,
both made with the SDK (tests/mcp_server.py), and one that will not start."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.harness import free_port, run_server, spawn, start_server, stop_server, wait_until
from tests.mcp_server import MCP_TOOLS
from wire.types import BUILTIN, BUILTIN_TOOLS, ToolInfo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    port = free_port()
    http = spawn([sys.executable, "-m", "tests.mcp_server", "http", str(port)], None)
    wait_until(lambda: reachable(f"http://127.0.0.1:{port}/mcp"), timeout=30)
    config = tmp_path_factory.mktemp("mcp") / "mcp.json"
    mark = str(config.with_name("cancelled"))
    config.write_text(json.dumps({"mcpServers": {
        "local": {"command": sys.executable, "args": ["-m", "tests.mcp_server"],
                  "env": {"PYTHONPATH": str(ROOT), "CANCELLED_MARK": mark}},
        "remote": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Test": "yes"}},
        "missing": {"command": "/nonexistent/mcp-server"},
    }}))
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MCP_CONFIG": str(config),
                                  "TOOL_TIMEOUT_S": "2"})
    wait_until(lambda: {t["server"] for t in tools(url)} == {BUILTIN, "local", "remote"}, timeout=60)
    yield url, Path(proc.log_path), Path(mark)
    stop_server(proc)
    stop_server(http)


def reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def mcp_tools(url: str) -> list[dict[str, Any]]:
    return [t for t in tools(url) if t["server"] != BUILTIN]


def tools(url: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = httpx.get(f"{url}/api/tools").json()["tools"]
    return listed


def call(url: str, server: str, name: str, **arguments: Any) -> httpx.Response:
    return httpx.post(f"{url}/api/tools/call", json={"server": server, "name": name, "arguments": arguments},
                      timeout=30)


def test_every_started_servers_tools_are_listed_after_the_built_in_ones(server: tuple[str, Path, Path]) -> None:
    url, log, _ = server
    assert [msgspec.convert(t, ToolInfo) for t in tools(url)[: len(BUILTIN_TOOLS)]] == list(BUILTIN_TOOLS)
    listed = {(t["server"], t["name"]): t for t in mcp_tools(url)}
    assert set(listed) == {(s, n) for s in ("local", "remote") for n in MCP_TOOLS}
    shout = listed["local", "shout"]
    assert shout["description"] == "Gives back the text it is given, shouting."
    assert shout["input_schema"]["properties"]["text"]["type"] == "string"
    warnings = [line for line in log.read_text().splitlines() if "MCP server missing" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING")


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_call_gives_the_tools_answer(server: tuple[str, Path, Path], where: str) -> None:
    r = call(server[0], where, "shout", text="hello")
    assert r.status_code == 200 and r.json() == {"text": "HELLO", "is_error": False}


def test_a_failing_or_hanging_tool_is_an_error_result(server: tuple[str, Path, Path]) -> None:
    failed = call(server[0], "local", "broken").json()
    assert failed["is_error"] and "broken" in failed["text"]  # the SDK keeps the exception to its server
    hung = call(server[0], "remote", "hang").json()
    assert hung == {"text": "hang did not answer within 2 s", "is_error": True}
    assert call(server[0], "local", "shout", text="still here").json()["text"] == "STILL HERE"


def test_a_client_that_hangs_up_cancels_its_call(server: tuple[str, Path, Path]) -> None:
    url, _, cancelled = server
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/api/tools/call", json={"server": "local", "name": "hang", "arguments": {}}, timeout=0.3)
    wait_until(cancelled.exists, timeout=1.5)  # before TOOL_TIMEOUT_S (2 s) would have cancelled it


def test_an_unknown_tool_or_bad_body_is_a_4xx(server: tuple[str, Path, Path]) -> None:
    unknown = call(server[0], "missing", "shout", text="x")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "tool_not_found"
    bad = httpx.post(f"{server[0]}/api/tools/call", json={"server": "local"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("content", "words"),
    [("{", "not an mcpServers file"), ('{"servers": {}}', "one object, mcpServers"),
     ('{"mcpServers": {"x": {"args": []}}}', "needs a command or a url")],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, words: str) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(content)
    done = run_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MCP_CONFIG": str(config)})
    assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_servers_stop_with_ours(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    local = {"command": sys.executable, "args": ["-m", "tests.mcp_server"]}
    config.write_text(json.dumps({"mcpServers": {"local": local}}))
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MCP_CONFIG": str(config)})
    try:
        wait_until(lambda: bool(mcp_tools(url)), timeout=60)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        mcp = [pid for pid in children if "tests.mcp_server" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(mcp) == 1
    finally:
        stop_server(proc)
    wait_until(lambda: not Path(f"/proc/{mcp[0]}").exists(), timeout=10)
