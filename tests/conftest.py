"""Shared fixtures: the real server, on loopback, with the real default model.

The helpers live in `tests.harness` (the benchmarks use them too); they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import ROOT, Popen, free_port, run_async, spawn, start_server, stop_server

__all__ = ["ROOT", "Popen", "free_port", "live_server", "run_async", "spawn", "start_server", "stop_server"]


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real app serving the real default model."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)
