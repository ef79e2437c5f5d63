"""A Hugging Face Hub on loopback for the download tests: the routes `huggingface_hub` uses (a
repository's file listing with sizes and hashes, and `resolve` with the headers and byte ranges
it reads), serving real files, with faults on demand: a connection cut halfway, a wrong hash, a
size no disk has, a gated repository, a slow line."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.harness import Popen

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_test_token"
_LISTING = re.compile(r"^/api/models/(?P<repo>[^/?]+/[^/?]+)(?:/revision/[^/?]+)?(?:\?.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/[^/]+/(?P<file>.+)$")


@dataclass
class Repo:
    files: dict[str, bytes]
    gated: bool = False  # answers only a request with TOKEN
    sizes: dict[str, int] = field(default_factory=dict)  # sizes to list instead of the true ones
    hashes: dict[str, str] = field(default_factory=dict)  # hashes to list instead of the true ones (corrupt)


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)  # files whose next GET stops halfway (then cleared)
    delay_s: float = 0.0  # a pause after each 64 KiB sent: a slow line
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range)
    url: str = ""

    def serve(self) -> http.server.ThreadingHTTPServer:
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub.answer(self, body=True)

            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return server

    def answer(self, handler: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        self.seen.append((handler.command, handler.path, handler.headers.get("Range", "")))
        listing, resolve = _LISTING.match(handler.path), _RESOLVE.match(handler.path)
        matched = listing or resolve
        name = matched["repo"] if matched is not None else ""
        repo = self.repos.get(name)
        if repo is None:
            return _error(handler, 404, "RepoNotFound", "Repository not found")
        if repo.gated and handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(handler, 401, "GatedRepo", "Access to this repository is restricted")
        if listing:
            return _json(handler, {"id": name, "sha": COMMIT, "siblings": [
                {"rfilename": f, "size": repo.sizes.get(f, len(data)), "blobId": f"blob{i}", "lfs": {
                    "size": repo.sizes.get(f, len(data)), "pointerSize": 134,
                    "sha256": repo.hashes.get(f, hashlib.sha256(data).hexdigest())}}
                for i, (f, data) in enumerate(repo.files.items())]})
        assert resolve is not None
        data = repo.files.get(resolve["file"])
        if data is None:
            return _error(handler, 404, "EntryNotFound", "Entry not found")
        self._send(handler, resolve["file"], data, body)

    def _send(self, handler: http.server.BaseHTTPRequestHandler, file: str, data: bytes, body: bool) -> None:
        start = int(m[1]) if (m := re.match(r"bytes=(\d+)-", handler.headers.get("Range", ""))) else 0
        handler.send_response(206 if start else 200)
        sha = hashlib.sha256(data).hexdigest()
        for key, value in (("X-Repo-Commit", COMMIT), ("ETag", f'"{sha}"'), ("X-Linked-Etag", f'"{sha}"'),
                           ("X-Linked-Size", str(len(data))), ("Accept-Ranges", "bytes"),
                           ("Content-Length", str(len(data) - start))):
            handler.send_header(key, value)
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        end = len(data)
        if file in self.cut:  # the line drops halfway: the client must ask for the rest
            self.cut.discard(file)
            end = start + (len(data) - start) // 2
        for at in range(start, end, 1 << 16):
            try:
                handler.wfile.write(data[at : min(at + (1 << 16), end)])
            except OSError:  # the client went away (cancelled)
                return
            if self.delay_s:
                time.sleep(self.delay_s)
        if end < len(data):
            handler.close_connection = True
            handler.wfile.flush()
            handler.connection.shutdown(2)


@contextmanager
def running(hub: Hub) -> Iterator[Hub]:
    server = hub.serve()
    try:
        yield hub
    finally:
        server.shutdown()


def start_with_hub(hub: Hub, folder: Path, **env: str) -> tuple[Popen, str]:
    """Our server on the default model, `folder` its models folder, `hub` its Hugging Face Hub."""
    from tests.harness import start_server

    return start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MODELS_DIR": str(folder), "HF_ENDPOINT": hub.url,
                             **env})


def _json(handler: http.server.BaseHTTPRequestHandler, value: object) -> None:
    data = json.dumps(value).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _error(handler: http.server.BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
    data = json.dumps({"error": message}).encode()
    handler.send_response(status)
    handler.send_header("X-Error-Code", code)
    handler.send_header("X-Error-Message", message)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
