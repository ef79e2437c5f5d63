"""The Python side of the sandbox's worker (client/sandbox_worker.mjs runs this file in a Pyodide
of its own): it puts the request's files in the working folder, runs the code, and posts back what
it printed and how it ended.

Standard library only, and no import of the client: the worker's interpreter has neither. The
page's side (client.sandbox) speaks to it in JSON strings, so the same `handle` runs on CPython in
the tests. Each run gets fresh globals; what it imports or writes stays until the worker is
terminated (Stop, or the time limit), after which the next run starts a fresh worker.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import linecache
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

FILENAME = "<code>"  # what tracebacks call the code that was run
MAX_OUTPUT = 100_000  # characters kept of each stream: a print loop must not fill the worker's memory
CUT = "\n… (output cut: {} more characters)\n"


class Capped(io.TextIOBase):
    """A text stream that keeps the first `limit` characters written to it and counts the rest."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        self.parts.append(text[:room])
        self.kept += min(len(text), room)
        self.dropped += max(0, len(text) - room)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts) + (CUT.format(self.dropped) if self.dropped else "")


def error_text(exc: BaseException) -> str:
    """The traceback as Python prints it, from the code's own frames on (the runner's are not the user's)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


async def execute(code: str) -> dict[str, Any]:
    """Run `code` as a script (top-level `await` allowed, for pyodide.http.pyfetch); return its
    stdout, stderr and traceback (empty when it ended well) as client.sandbox.RunResult's fields."""
    # Tracebacks quote the code's lines, as they would a file's.
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(keepends=True), FILENAME)
    out, err = Capped(), Capped()
    error = ""
    with redirect_stdout(out), redirect_stderr(err):
        try:
            compiled = compile(code, FILENAME, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
            pending = eval(compiled, {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S307
            if pending is not None:  # the code awaits at top level: eval gave its coroutine
                await pending
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = error_text(exc)
        except BaseException as exc:  # noqa: BLE001 - whatever the code raises is its output
            error = error_text(exc)
    return {"stdout": out.text(), "stderr": err.text(), "error": error}


def write_files(files: dict[str, str]) -> None:
    """The request's files (base64, by bare name: client.sandbox makes them so) into the working folder."""
    for name, data in files.items():
        Path(name).write_bytes(base64.b64decode(data))


async def handle(message: str, post: Callable[[str], object] | None = None) -> None:
    """One request from the page: {"code", "files"}. Posts {"kind": "started"} once the code
    starts (the time limit counts from then, not from the worker's start), then
    {"kind": "done", "result": {...}}. `post` defaults to the worker's postMessage."""
    if post is None:
        from js import postMessage  # the worker's global scope

        post = postMessage
    request = json.loads(message)
    write_files(request.get("files", {}))
    post(json.dumps({"kind": "started"}))
    post(json.dumps({"kind": "done", "result": await execute(request["code"])}))
