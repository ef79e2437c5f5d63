"""Python in the page: code run in a Pyodide of its own, in a Web Worker, with a time limit.

The worker (client/sandbox_worker.mjs, which runs client/sandbox_runner.py) has none of the page's
interpreter, state or DOM, and the page's Content-Security-Policy, so it reaches our host only.
It starts on the first run, not at page load, and stays for the next; Stop, or the time limit,
terminates it (the only way to end code that does not return), and the next run starts a fresh one.
The limit counts from when the code starts, not from the worker's start.

For the rest of the client (the Run buttons, the model's `python` tool):

    result = await sandbox.run(code, files)   # files: {name: bytes} or the chat's Attachments
    sandbox.stop()                            # ends the run in progress: its result says stopped
    sandbox.for_model(result)                 # the result as the text a model reads

Runs take turns. Everything here but `Sandbox._start_worker` and `page_*` is plain Python (no
DOM), tested on CPython with the runner itself in place of the worker.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal, Protocol

import msgspec
from msgspec import Struct

from client.attachments import Attachment
from wire.types import CODE_TIME_LIMIT_ATTRIBUTE, CODE_TIME_LIMIT_S, ToolCallResult

WORKER = "/client/sandbox_worker.mjs"
START_LIMIT_S = 120.0  # for the worker's Pyodide to start: generous, a cold start on a busy machine
LANGUAGES = frozenset({"python", "py", "python3"})  # code blocks with a Run button
MAX_FOR_MODEL = 8_000  # characters of a result a model reads


class RunResult(Struct, frozen=True, omit_defaults=True):
    """How a run went: what it printed, and its traceback if it raised (client.sandbox_runner
    fills these three), or whether it was stopped or ran out of time (then the output is lost
    with the worker)."""

    stdout: str = ""
    stderr: str = ""
    error: str = ""
    stopped: bool = False
    timed_out: bool = False
    failed: bool = False  # the worker could not run it (`error` says why): no fault of the code
    time_limit_s: float = 0.0  # the limit it ran under, for saying so when it ran out

    @property
    def ok(self) -> bool:
        return not (self.error or self.stopped or self.timed_out or self.failed)


class Reply(Struct, frozen=True):
    """A message from the worker (client/sandbox_runner.py and sandbox_worker.mjs write them)."""

    kind: Literal["started", "done", "failed"]
    result: RunResult = RunResult()
    error: str = ""


STOP = Reply("failed", error="stop")  # put in the reply queue by `stop()`: not a message the worker sends


def ending(result: RunResult) -> str:
    """One line on how the run ended: the panel's status, and the first line the model reads."""
    if result.timed_out:
        return f"Stopped: the code ran past the time limit of {result.time_limit_s:g} s."
    if result.stopped:
        return "Stopped."
    if result.failed:
        return "Python could not run the code."
    if result.error:
        return "The code raised an exception."
    return "Finished."


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def for_model(result: RunResult, limit: int = MAX_FOR_MODEL) -> str:
    """The result as a tool's answer: how it ended, then each stream that has something, each
    cut to its share of `limit` characters (the traceback's end, where the error is, is kept)."""
    why = "error" if result.failed else "traceback"
    parts = [("stdout", result.stdout), ("stderr", result.stderr), (why, result.error)]
    shown = [(name, text) for name, text in parts if text]
    share = limit // max(1, len(shown))
    out = [ending(result)]
    for name, text in shown:
        body = clip(text, share) if name != "traceback" or len(text) <= share else "…" + text[-share:]
        out.append(f"{name}:\n{body.rstrip()}")
    return "\n\n".join(out)


def file_name(name: str) -> str:
    """A file's name in the worker's working folder: its last part, never a path out of it."""
    base = PurePosixPath(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else "file"


Files = Mapping[str, bytes] | Iterable[Attachment]


def file_map(files: Files) -> dict[str, bytes]:
    """{name: bytes} from either form; a later file of the same name wins (an edited upload)."""
    pairs = files.items() if isinstance(files, Mapping) else ((f.name, f.text.encode()) for f in files)
    return {file_name(name): data for name, data in pairs}


def chat_files(turns: Iterable[Any]) -> tuple[Attachment, ...]:
    """The files attached to a chat's messages (client.state.Turn.files), in order."""
    return tuple(f for turn in turns for f in turn.files)


def request(code: str, files: Files = ()) -> str:
    """The message the worker's runner reads (client.sandbox_runner.handle)."""
    encoded = {name: base64.b64encode(data).decode() for name, data in file_map(files).items()}
    return json.dumps({"code": code, "files": encoded})


def reply(message: str) -> Reply:
    try:
        return msgspec.json.decode(message, type=Reply)
    except msgspec.DecodeError as exc:  # the worker is ours: this would be a bug, said as one
        return Reply("failed", error=f"unreadable message from the worker: {exc}")


class Worker(Protocol):
    def postMessage(self, message: str) -> None: ...  # noqa: N802 (the DOM's name)

    def terminate(self) -> None: ...


class Sandbox:
    """One worker, started when first needed; runs take turns (a lock), and each waits for its
    worker's replies on a queue that `stop()` can also put into."""

    def __init__(self, start_worker: Callable[[Callable[[str], None]], Worker] | None = None) -> None:
        """`start_worker(on_message)`: a new worker that hands each message it posts to `on_message`;
        by default a Web Worker."""
        self._start = start_worker or _WebWorker
        self._worker: Worker | None = None
        self._replies: asyncio.Queue[Reply] = asyncio.Queue()
        self._turn = asyncio.Lock()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    async def run(
        self,
        code: str,
        files: Files = (),
        timeout_s: float | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> RunResult:
        """Run `code` with `files` in the working folder; `timeout_s` (default: the page's
        limit, client.sandbox.time_limit_s) counts from when the code starts, `on_started`
        is called then. Cancelling the task that awaits this ends the run as Stop does."""
        limit = timeout_s if timeout_s is not None else time_limit_s()
        async with self._turn:
            self._running = True
            try:
                return await self._run(request(code, files), limit, on_started)
            except BaseException:  # cancelled: the code must not go on behind the caller's back
                self._end_worker()
                raise
            finally:
                self._running = False

    async def _run(self, message: str, limit: float, on_started: Callable[[], None] | None) -> RunResult:
        if self._worker is None:
            self._replies = asyncio.Queue()
            queue = self._replies  # this worker's: a message from one already ended never lands here
            self._worker = self._start(lambda text: queue.put_nowait(reply(text)))
        while not self._replies.empty():  # a Stop that came as the last run ended
            self._replies.get_nowait()
        self._worker.postMessage(message)
        try:
            got = await asyncio.wait_for(self._replies.get(), START_LIMIT_S)
        except TimeoutError:
            got = Reply("failed", error=f"Python did not start in {START_LIMIT_S:g} s.")
        if got.kind == "started":
            if on_started is not None:
                on_started()
            try:
                got = await asyncio.wait_for(self._replies.get(), limit)
            except TimeoutError:
                self._end_worker()
                return RunResult(timed_out=True, time_limit_s=limit)
        if got.kind == "done":
            return got.result
        self._end_worker()
        return RunResult(stopped=True) if got is STOP else RunResult(error=got.error, failed=True)

    def stop(self) -> None:
        """End the run in progress (its result says stopped); nothing when none runs."""
        if self._running:
            self._replies.put_nowait(STOP)

    def _end_worker(self) -> None:
        if self._worker is not None:
            self._worker.terminate()
            self._worker = None


def time_limit_s() -> float:
    """The page's time limit for a run (the server's CODE_TIME_LIMIT_S), or the default off the page."""
    try:
        from js import document
    except ImportError:
        return CODE_TIME_LIMIT_S
    value = document.documentElement.getAttribute(CODE_TIME_LIMIT_ATTRIBUTE)
    try:
        return float(value) if value else CODE_TIME_LIMIT_S
    except ValueError:
        return CODE_TIME_LIMIT_S


def pyodide_url() -> str:
    """The folder of the page's own Pyodide (index.html's `interpreter`, as the server rewrote it
    for the build), so the worker loads the same files, already in the browser's cache."""
    from js import document

    config = json.loads(str(document.querySelector('script[type="py"]').getAttribute("config")))
    return str(config["interpreter"]).rpartition("/")[0] + "/"


class _WebWorker:
    """A module Web Worker whose messages go to `on_message`; terminate() also frees the listeners."""

    def __init__(self, on_message: Callable[[str], None]) -> None:
        from urllib.parse import quote

        from js import Worker as JsWorker
        from pyodide.ffi import create_proxy

        from client.browser import to_init

        def failed(event: Any) -> None:
            # An ErrorEvent says what went wrong; a script that did not load fires a bare Event.
            why = getattr(event, "message", None) or "its script did not load"
            on_message(json.dumps({"kind": "failed", "error": f"The worker failed: {why}"}))

        self._worker = JsWorker.new(f"{WORKER}?pyodide={quote(pyodide_url())}", to_init({"type": "module"}))
        self._proxies = [create_proxy(lambda event: on_message(str(event.data))), create_proxy(failed)]
        self._worker.onmessage, self._worker.onerror = self._proxies

    def postMessage(self, message: str) -> None:  # noqa: N802 (the DOM's name)
        self._worker.postMessage(message)

    def terminate(self) -> None:
        self._worker.terminate()
        for proxy in self._proxies:
            proxy.destroy()


# The page's sandbox: the Run buttons and the model's tool share it, so their runs take turns.
SANDBOX = Sandbox()


async def run(
    code: str, files: Files = (), timeout_s: float | None = None, on_started: Callable[[], None] | None = None
) -> RunResult:
    """Run `code` in the page's sandbox (see Sandbox.run)."""
    return await SANDBOX.run(code, files, timeout_s, on_started)


def stop() -> None:
    """Stop the page's sandbox's run in progress."""
    SANDBOX.stop()


async def tool(code: str, files: Files = ()) -> ToolCallResult:
    """The built-in `python` tool: `code` run in the page's sandbox, as the result the model reads."""
    result = await run(code, files)
    return ToolCallResult(for_model(result), not result.ok)
