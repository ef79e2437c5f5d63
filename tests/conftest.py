"""Shared fixtures: the real server, on loopback, with the real default model.

Tests import their helpers from `tests.harness` (processes, SSE, request bodies; the benchmarks
use it too), `tests.fakes` (fake engines and servers), `tests.tinymodels`, `tests.fakedom` and
`tests.llama_server`, never from another test module; the browser tests' own are in
`tests.browser.helpers`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.harness import start_server, stop_server

# The apps the tests build in this process read the default models folder too: never the user's.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="snake_llama-tests-data-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real app serving the real default model."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)


@pytest.fixture
def fresh_server() -> Iterator[str]:
    """The real app on the default model, with nothing cached: greedy decoding is exact only for
    the same cache layout, and the shared server's slots hold whatever earlier tests left, which
    can tip a near tie (seen: "10, 100, 101" against "10, 11, 12"; "100" for a whole count)."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)
