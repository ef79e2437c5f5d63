"""A real llama.cpp server (through `xllamacpp`) on loopback, for the remote engine's tests.

    python -m tests.llama_server MODEL PORT [--n-ctx N] [--parallel N] [--alias NAME] [--chat-template FILE]

serves MODEL on http://127.0.0.1:PORT (the OpenAI API under /v1, llama.cpp's own endpoints at the
root) until it is killed. `llama_server` is the pytest fixture that runs it in a subprocess.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REMOTE_MODEL = "gemma-remote"


def serve(model: Path, port: int, n_ctx: int, parallel: int, alias: str, chat_template: Path | None) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx = n_ctx  # shared by the slots
    params.n_parallel = parallel
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    params.warmup = False
    params.verbosity = 1  # errors only
    params.endpoint_props = True
    if alias:
        params.model_alias = {alias}
    if chat_template:
        params.chat_template = chat_template.read_text()
    server = xllamacpp.Server(params)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--alias", default=REMOTE_MODEL)
    parser.add_argument("--chat-template", type=Path)
    args = parser.parse_args()
    serve(args.model, args.port, args.n_ctx, args.parallel, args.alias, args.chat_template)


@pytest.fixture(scope="module", name="llama_server")
def llama_server_fixture() -> Iterator[str]:
    """Base URL (`.../v1`) of a real llama.cpp server serving the default model as `REMOTE_MODEL`."""
    import sys

    from server.default_model import default_model_path
    from tests.harness import free_port, spawn, stop_server

    port = free_port()
    root = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "tests.llama_server", str(default_model_path()), str(port)]
    proc = spawn(argv, f"{root}/health", timeout=120)
    yield f"{root}/v1"
    stop_server(proc)


if __name__ == "__main__":
    main()
