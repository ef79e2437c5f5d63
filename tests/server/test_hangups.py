"""A client that hangs up mid-request, against the real app under uvicorn on loopback (no model needed)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
import uvicorn

from server.app import create_app
from server.settings import Settings
from tests.fakes import SilentEngine


class Records(logging.Handler):
    """Every log record, from any thread; `wait_for` blocks until one matches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, match: Callable[[logging.LogRecord], bool], timeout: float = 30) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: any(match(r) for r in self.records), timeout)

    def text(self) -> str:
        return "\n".join(logging.Formatter("%(levelname)s %(name)s %(message)s").format(r) for r in self.records)


class Served(NamedTuple):
    port: int
    records: Records
    stop: Callable[[], None]


@pytest.fixture
def served() -> Iterator[Served]:
    """The app under uvicorn on a thread, serving a socket bound before it starts."""
    records = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    app = create_app(Settings(), SilentEngine, lambda exc: None)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="info", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()

    def stop() -> None:
        """Shut the server down; uvicorn waits for its requests' tasks, so their logging is done."""
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()

    try:
        records.wait_for(lambda r: r.getMessage() == "silent loaded silent")
        yield Served(listener.getsockname()[1], records, stop)
    finally:
        stop()
        listener.close()
        root.removeHandler(records)
        root.setLevel(level)


@pytest.mark.parametrize("path", ["/api/converse", "/v1/chat/completions"])
def test_a_hang_up_mid_body_is_one_info_line(served: Served, path: str) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as client:
        client.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode() + b'{"conversation": {"messages": ['
        )
    # the hang-up is seen when the server next reads, which a stop at once could come before
    served.records.wait_for(lambda r: "hung up during the request body" in r.getMessage())
    served.stop()
    text = served.records.text()
    assert f"INFO snake_llama client hung up during the request body: POST {path}" in text.splitlines()
    assert f"path={path} status=499" in text  # the access log still has its line
    assert "Traceback" not in text and "unexpected error" not in text and "Exception in ASGI" not in text
    assert all(r.levelno < logging.WARNING for r in served.records.records), text
