"""Shared fixtures: the real server, on loopback, with the real default model.

Tests import their helpers from `tests.harness` (processes, SSE, request bodies; the benchmarks
use it too), `tests.fakes` (fake engines and servers), `tests.tinymodels`, `tests.fakedom` and
`tests.llama_server`, never from another test module; the browser tests' own are in
`tests.browser.helpers`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import start_server, stop_server


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real app serving the real default model."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)
