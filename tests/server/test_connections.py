"""Connections (server.connections): sockets that say nothing cannot exhaust the server, and
headers that never finish are cut off."""

from __future__ import annotations

import http.client
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.connections import AcceptErrors
from server.settings import Settings
from tests.harness import Popen, chat, converse, free_port, spawn, stop_server, wait_until

FLOOD = 2000
FILES = 1024  # a common default limit on open files, which the flood is twice
DEADLINE_S = 5  # HEADER_TIMEOUT_S for a flood that reaches it


def start_confined(env: dict[str, str] | None = None) -> tuple[Popen, str]:
    """The real server on the default model, allowed FILES open files (hard limit too, so it cannot
    raise its own)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["prlimit", f"--nofile={FILES}:{FILES}", sys.executable, "-m", "server", "--port", str(port)]
    return spawn(argv, f"{url}/health", {"MODEL_PATH": "", **(env or {})}, timeout=120), url


@pytest.fixture
def confined() -> Iterator[tuple[Popen, str]]:
    # The flood is held for the whole measure; its deadline is the next test's.
    proc, url = start_confined({"HEADER_TIMEOUT_S": "300"})
    yield proc, url
    stop_server(proc)


# one client for every probe (making one costs milliseconds), each probe on a new connection
PROBE = httpx.Client(timeout=5, headers={"Connection": "close"})


def health_s(url: str) -> float:
    t0 = time.perf_counter()
    assert PROBE.get(f"{url}/health").status_code == 200
    return time.perf_counter() - t0


@contextmanager
def flood(url: str) -> Iterator[list[socket.socket]]:
    """FLOOD idle connections to `url`, yielded once the server has taken them all in (they wait
    in its listen backlog until then), and closed after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * FLOOD)), hard))
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(FLOOD)]
    try:
        wait_until(lambda: answers_fast(url), timeout=30)
        yield idle
    finally:
        for s in idle:
            s.close()


def test_a_flood_of_idle_connections_leaves_the_server_answering(confined: tuple[Popen, str]) -> None:
    proc, url = confined
    with flood(url):
        worst = max(health_s(url) for _ in range(20))
        status, events = converse(url, chat("Hi", max_tokens=4))
        held = len(os.listdir(f"/proc/{proc.pid}/fd"))
    assert worst < 0.1, f"/health took {worst:.3f} s"
    assert status == 200 and events[-1][0] == "done"
    assert held < FILES - 64, f"the server holds {held} files"
    log = Path(proc.log_path).read_text()
    assert len(log.splitlines()) < 100 and "Traceback" not in log, log[-2000:]


def answers_fast(url: str) -> bool:
    """Whether /health answers in 20 ms; while the server is still taking in a flood, a probe may
    wait behind it in the listen backlog."""
    try:
        return health_s(url) < 0.02
    except httpx.TimeoutException:
        return False


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False


def test_a_flood_reaching_its_header_deadline_at_once_is_closed_without_stalling() -> None:
    """The idle flood held (no per-client cap below it) until its header deadline, which most of it
    reaches within one accept burst: closing it all must not hold up /health."""
    proc, url = start_confined({"HEADER_TIMEOUT_S": str(DEADLINE_S), "MAX_CONNECTIONS_PER_CLIENT": str(4 * FLOOD)})
    try:
        with flood(url) as idle:
            held = len(os.listdir(f"/proc/{proc.pid}/fd"))
            # what the caps did not evict at once, oldest first: timed from its first close to its last
            kept = [s for s in idle if not closed_by_server(s)]
            wait_until(lambda: closed_by_server(kept[0]), timeout=DEADLINE_S + 30, interval=0.01)
            times: list[float] = []
            give_up = time.monotonic() + 30
            while not all(closed_by_server(s) for s in kept):  # the deadline closes every one of them
                assert time.monotonic() < give_up, "the header deadline did not close the flood"
                times.append(health_s(url))
            times += [health_s(url) for _ in range(20)]
    finally:
        stop_server(proc)
    assert held > FILES // 2, f"the server held only {held} files: the flood was not held to its deadline"
    assert max(times) < 0.1, f"/health took {max(times):.3f} s while the flood was closed ({len(times)} probes)"


def test_headers_that_never_finish_are_cut_off_at_the_deadline() -> None:
    proc, url = start_confined({"HEADER_TIMEOUT_S": "1"})
    try:
        slow = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        slow.settimeout(30)
        t0 = time.perf_counter()
        assert slow.recv(1) == b""  # closed by the server
        waited = time.perf_counter() - t0
        slow.close()
        assert 0.5 < waited < 10, waited
        assert health_s(url) < 1  # a request that does finish its headers is answered
        # and on a kept-alive connection, the next request's headers have the same deadline
        kept = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
        kept.request("GET", "/health")
        assert kept.getresponse().read() and kept.sock is not None
        kept.sock.sendall(b"GET /health HTTP/1.1\r\n")
        t0 = time.perf_counter()
        assert kept.sock.recv(1) == b""
        assert 0.5 < time.perf_counter() - t0 < 10
        kept.close()
    finally:
        stop_server(proc)


def test_the_settings_have_sane_defaults() -> None:
    s = Settings()
    assert 1 <= s.header_timeout_s <= 60 and 1 <= s.idle_timeout_s <= s.header_timeout_s
    assert s.max_connections_per_client < s.max_connections


class Loop:
    def __init__(self) -> None:
        self.passed_on: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.passed_on.append(context)


def test_accept_errors_are_one_line_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    handler, loop = AcceptErrors(every_s=3600), Loop()
    full = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
    for _ in range(1000):
        handler(loop, full)  # type: ignore[arg-type]
    handler(loop, {"message": "something else"})  # type: ignore[arg-type]
    lines = [r for r in caplog.records if "could not accept" in r.getMessage()]
    assert len(lines) == 1 and "1 connection" in lines[0].getMessage() and handler.missed == 999
    assert loop.passed_on == [{"message": "something else"}]
