"""A client that asks for an answer and then stops reading its stream is dropped by the server
within a bounded time, rather than holding the request (and its connection) for as long as the
client likes: the real server, on a tiny model with long tokens, so that the stream soon fills
every buffer between the server and a reader that reads nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests import tinymodels as tm
from tests.harness import chat, metrics, start_server, stop_server, wait_until

PIECE = b"tick " * 6554  # a token of 32 KiB
# ~32 MiB of stream: far more than the kernel buffers for one connection (at most 4 MiB by
# Linux's default tcp_wmem, 16 MiB on some tuned hosts) and uvicorn's own 64 KiB, so the
# server's writes block, as they would for a client that stopped reading
ANSWER_TOKENS = 1000
SEND_TIMEOUT_S = 5
DROPPED_WITHIN_S = SEND_TIMEOUT_S + 25  # and the time to fill the buffers, on a busy machine
CONVERSE_ENDED = "snake_llama_requests_total{route=/api/converse}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our server on a model that answers any chat with `PIECE` over and over."""
    path = tmp_path_factory.mktemp("long") / "long.gguf"
    tm.write_gguf(path, "f32", continuation=[PIECE], loop=True)
    env = {"THREADS": "1", "SEND_TIMEOUT_S": str(SEND_TIMEOUT_S)}
    proc, url = start_server("--model", str(path), "--n-ctx", "2048", env=env)
    yield url
    stop_server(proc)


def ask_and_never_read(url: str) -> socket.socket:
    """A connection that has asked for an answer and will read none of it."""
    body = json.dumps(chat("go", max_tokens=ANSWER_TOKENS)).encode()
    host, port = url.removeprefix("http://").split(":")
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
    reader.connect((host, int(port)))
    reader.sendall(
        f"POST /api/converse HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    return reader


def test_a_reader_that_stops_reading_is_dropped(server: str) -> None:
    with ask_and_never_read(server):
        # the access middleware counts a request when the app is done with it: here, only
        # once the server gives up on the blocked write (the answer alone takes seconds)
        wait_until(lambda: metrics(server)[CONVERSE_ENDED] == 1, timeout=DROPPED_WITHIN_S, interval=0.5)
