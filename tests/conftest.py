"""Shared fixtures: the real server, on loopback, with the real default model."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
Popen = subprocess.Popen[str]
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a thread of its own.

    Playwright's sync API keeps an event loop running on the main thread while a browser
    fixture is alive, and asyncio.run refuses to nest.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(argv: list[str], ready_url: str | None, env: dict[str, str] | None = None, timeout: float = 60) -> Popen:
    """Start a process with its output in a log file (a pipe could fill up and block it) and,
    given `ready_url`, wait until that URL answers 200."""
    log = tempfile.NamedTemporaryFile("w+", prefix="snake_llama-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while ready_url:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited {proc.returncode}: {Path(log.name).read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{argv[2]} did not answer {ready_url} in {timeout} s")
        time.sleep(0.1)
    return proc


def start_server(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> tuple[Popen, str]:
    """`python -m server` in a subprocess on a free loopback port; returns it and its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "server", "--port", str(port), *args]
    return spawn(argv, f"{url}/health" if wait else None, env), url


def stop_server(proc: Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real app serving the real default model."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)
