"""Stand-ins the tests share: engines that script what a model does, and a fake /api/converse.

- `ScriptedEngine` yields `max_tokens` words slowly and records what ran (the scheduler and
  answer-registry tests); `admit` asks a scheduler for one of its answers.
- `SilentEngine` must never be asked for anything (a request that ends before its body is in).
- `FakeStore` is the page's storage (client.storage.Store): a dict that counts its syncs.
- `FakeConverse` serves /api/converse on a loopback port of its own, for answers the real model
  cannot be made to give; `SlowStream` is one that never finishes and notes the hang-up.

The fake engines meet `server.engines.base.Engine` (mypy checks that where the tests pass them).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import AsyncIterator, Generator, Sequence
from io import BufferedIOBase
from typing import Any

from client import library as lib
from client.rpc import Client
from client.state import Chat, Turn
from server.engines.base import Generation, Piece, Prompt, Text, Usage
from server.prompt import SEED
from server.sampling import Sampling
from server.scheduler import Job, Scheduler
from wire.events import DoneEvent, Event
from wire.types import ConverseRequest, Health, Message, ModelList, ToolCallRequest, ToolCallResult, ToolList

# -- engines --------------------------------------------------------------------------------------


class ScriptedEngine:
    """Yields `max_tokens` words slowly; records what ran and how many ran at once. A prompt's
    payload is its name, and it counts `tokens` tokens."""

    name = "scripted"
    model = "scripted"
    n_ctx = 4096
    template = SEED
    supports: frozenset[str] = frozenset()

    def __init__(self, fail_at: int | None = None, parallel: int = 1, capacity: int = 1 << 20) -> None:
        self.parallel = parallel
        self.capacity = capacity
        self.ran: list[str] = []
        self.produced: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.fail_at = fail_at
        self.closed = False
        self.lock = threading.Lock()

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        return Prompt(len(messages), (), messages[-1].text)

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        usage = Usage(prompt_tokens=prompt.n_tokens)
        return Generation(self._words(str(prompt.payload), sampling, usage), usage)

    def _words(self, name: str, sampling: Sampling, usage: Usage) -> Generator[Piece, None, None]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.ran.append(name)
        self.produced[name] = 0
        try:
            for i in range(sampling.max_tokens):
                if i == self.fail_at:
                    raise RuntimeError("scripted fault")
                time.sleep(0.02)
                usage.completion_tokens += 1
                self.produced[name] += 1
                yield Text(f"w{i} ")
            usage.finish_reason = "length"
        finally:
            with self.lock:
                self.active -= 1

    def close(self) -> None:
        self.closed = True


def admit(scheduler: Scheduler, name: str, max_tokens: int = 5, tokens: int = 1, owner: str = "") -> Job:
    """Ask `scheduler` (on a `ScriptedEngine`) for the answer named `name`: `max_tokens` words to a
    prompt of `tokens` tokens, for the key named `owner`."""
    return scheduler.admit(Prompt(tokens, (), name), Sampling(max_tokens=max_tokens), owner=owner)


class SilentEngine:
    """An engine that is never asked for an answer: the request ends before its body is in."""

    name = "silent"
    model = "silent"
    n_ctx = capacity = 4096
    parallel = 1
    template = SEED
    supports: frozenset[str] = frozenset()

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        raise AssertionError("no prompt should be rendered")

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        raise AssertionError("no answer should start")

    def close(self) -> None:
        pass


# -- the page's storage ---------------------------------------------------------------------------


class FakeStore(dict[str, Any]):
    """A pyscript Storage stand-in: a dict whose `sync()` is counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.syncs = 0

    async def sync(self) -> None:
        self.syncs += 1


# -- a fake /api/converse -------------------------------------------------------------------------


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

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
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

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
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


# -- the page's server, for the client's tests ------------------------------------------------------

UP = Health(status="ok")
DONE = DoneEvent(stop_reason="stop", prompt_tokens=3, completion_tokens=1, ttft_s=0.1, tokens_per_s=10.0)


class FakeServer(Client):
    """Answers every call (a new answer or one read again) with the next scripted list of events;
    records keys, requests, and the answers read again or stopped."""

    def __init__(
        self, *answers: list[Event], health: Health | None = UP, models: ModelList | None = None,
        tools: ToolList | None = None,
    ) -> None:
        super().__init__()
        self.answers = list(answers)
        self.said = health
        self.offered = models  # None: an older server, without GET /api/models
        self.listed = tools
        self.tool_calls: list[ToolCallRequest] = []  # the MCP tools it was asked to run
        self.hang_tools = False  # its tools never answer (until the call is cancelled)
        self.calls: list[tuple[str, ConverseRequest]] = []
        self.resumed: list[str] = []
        self.stopped: list[str] = []

    def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
        self.calls.append((self.api_key, request))
        return self.next_answer()

    def next_answer(self) -> AsyncIterator[Event]:
        events = self.answers.pop(0)

        async def stream() -> AsyncIterator[Event]:
            for event in events:
                yield event

        return stream()

    def resume(self, answer_id: str) -> AsyncIterator[Event]:
        self.resumed.append(answer_id)
        return self.next_answer()

    async def stop(self, answer_id: str) -> bool:
        self.stopped.append(answer_id)
        return False  # could not be asked: the page stops its answer all the same

    async def health(self) -> Health | None:
        return self.said

    async def models(self) -> ModelList | None:
        return self.offered

    async def tools(self) -> ToolList | None:
        return self.listed

    async def call_tool(self, request: ToolCallRequest) -> ToolCallResult:
        self.tool_calls.append(request)
        if self.hang_tools:
            await asyncio.Event().wait()
        return ToolCallResult(f"{request.name} ran with {json.dumps(request.arguments)}", False)


def mid_answer(stale: str) -> lib.Library:
    """The chats as a reloaded page finds them: an answer the server named, partly written, on its way."""
    chat = Chat(turns=(Turn(user=True, text="Hi"), Turn(user=False, text=stale, status="streaming", answer_id="a1")),
                id="c1")
    saved: dict[str, object] = dict(lib.records(lib.Library(chats=(chat,), open_id="c1")))
    return lib.from_records(saved)
