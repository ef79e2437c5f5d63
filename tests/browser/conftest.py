"""Headless Chromium for the browser tests: Debian's build, driven by Playwright.

The browser is the system one (no browser download); its background services are off so
that the only network traffic is the page's own, which the tests then check.
"""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 900, "height": 600}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class RecordedPage:
    """A fresh page (own context: empty cache and storage) that records every request URL."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        # Uncaught JS errors, and Python tracebacks (PyScript reports those on the console).
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Traceback" in message.text:
            self.errors.append(message.text)


@pytest.fixture
def recorded_page(chromium: Any) -> Iterator[RecordedPage]:
    recorded = RecordedPage(chromium)
    yield recorded
    recorded.context.close()


class FakeConverse:
    """A stand-in for /api/converse, on a loopback port of its own: `answer` writes the event
    stream for each request body (subclasses say what)."""

    def __init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                outer.answer(body, self.wfile)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/converse"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes, out: BinaryIO) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowStream(FakeConverse):
    """Streams a token every 50 ms until the client hangs up.

    The real model answers in a few tokens, too fast to press Stop; this one says it is queued,
    then never finishes, and records whether the browser closed the connection (what makes the real server cancel).
    """

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.disconnected = threading.Event()
        super().__init__()

    def answer(self, body: bytes, out: BinaryIO) -> None:
        self.requests.append(body)
        try:
            # Like the real server with a busy model: where we are in its queue, first.
            out.write(b'event: queued\ndata: {"position": 3}\n\n')
            out.flush()
            time.sleep(1.0)
            for _ in range(2000):
                out.write(b'event: token\ndata: {"text": "tick "}\n\n')
                out.flush()
                time.sleep(0.05)
        except OSError:
            self.disconnected.set()


@pytest.fixture
def slow_stream() -> Iterator[SlowStream]:
    stream = SlowStream()
    yield stream
    stream.close()
