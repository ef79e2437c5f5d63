"""One shared model, many requests: a bounded FIFO queue, one generation at a time.

ggml models are not thread-safe, so a single worker thread runs every generation; the event
loop only moves text between that thread and the clients, so it stays responsive. An engine
that declares `parallel > 1` (a remote server with several slots) gets that many at once. A request
cancelled while queued never reaches the model; one cancelled while running stops within a
token, and the model goes straight to the next request in the queue.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from client.protocol import DoneEvent, ErrorEvent, Event, QueuedEvent, SamplingParams, TokenEvent
from server.engines.base import Engine, Generation
from server.prompt import STOP_MARKERS
from server.stops import StopFilter


class QueueFull(Exception):
    """Every queue slot is taken; the client should retry later."""


@dataclass(eq=False)  # jobs are compared and hashed by identity
class Job:
    prompt: str
    params: SamplingParams
    truncated_turns: int = 0
    stops: tuple[str, ...] = STOP_MARKERS
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    events: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    admitted_at: float = field(default_factory=time.perf_counter)


class Scheduler:
    def __init__(
        self, engine: Engine, queue_size: int = 32, on_done: Callable[[DoneEvent], None] | None = None
    ) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self.on_done = on_done
        self.parallel = max(1, int(getattr(engine, "parallel", 1)))
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self._moved = asyncio.Event()
        self._worker = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="model")

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def admit(
        self, prompt: str, params: SamplingParams, truncated_turns: int = 0, stops: tuple[str, ...] = ()
    ) -> Job:
        """Take a request or refuse it at once (before any response starts).

        `stops` are extra stop strings, hidden like the role markers (which always apply).
        """
        busy = len(self._running) >= self.parallel
        if busy and len(self._waiting) >= self.queue_size:
            raise QueueFull(f"the model is busy and {len(self._waiting)} requests are waiting")
        job = Job(prompt, params, truncated_turns, STOP_MARKERS + tuple(s for s in stops if s))
        if not busy:
            self._start(job)
        else:
            self._waiting.append(job)
        return job

    async def events(self, job: Job) -> AsyncIterator[Event]:
        """The job's events; leaving the iteration early cancels the job."""
        try:
            async for queued in self._wait_turn(job):
                yield queued
            while (event := await job.events.get()) is not None:
                yield event
        finally:
            job.cancelled.set()
            if job in self._waiting:
                self._waiting.remove(job)
                self._notify_moved()

    async def _wait_turn(self, job: Job) -> AsyncIterator[QueuedEvent]:
        shown = 0
        while not job.started.done():
            position = self._waiting.index(job) + 1
            if position != shown:
                shown = position
                yield QueuedEvent(position)
            moved = asyncio.ensure_future(self._moved.wait())
            waiters: set[asyncio.Future[Any]] = {job.started, moved}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            moved.cancel()

    def _notify_moved(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    def _start(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        self._running.add(job)
        job.started.set_result(None)
        future = loop.run_in_executor(self._worker, self._generate, job, loop)
        future.add_done_callback(lambda _: self._next(job))

    def _next(self, finished: Job) -> None:
        self._running.discard(finished)
        while self._waiting and len(self._running) < self.parallel:
            job = self._waiting.popleft()
            if not job.cancelled.is_set():
                self._start(job)
        self._notify_moved()

    def _generate(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        """Runs on the model thread."""

        def emit(event: Event | None) -> None:
            loop.call_soon_threadsafe(job.events.put_nowait, event)

        gen = Generation()
        try:
            # closing(): the engine's generator ends (and frees the model) however we leave it
            with closing(self.engine.stream(job.prompt, job.params, gen)) as pieces:  # type: ignore[type-var]
                reason, first = self._relay(job, pieces, gen, emit)
            done = self._done(job, gen, reason, first)
            if self.on_done:
                self.on_done(done)
            emit(done)
        except Exception as exc:  # an engine fault ends this answer, never the server
            emit(ErrorEvent("engine_error", f"the model failed while answering: {exc}"))
        finally:
            emit(None)

    @staticmethod
    def _relay(
        job: Job, pieces: Iterator[str], gen: Generation, emit: Callable[[Event | None], None]
    ) -> tuple[str, float | None]:
        """Pass the engine's text through the stop filter to the client; return the stop
        reason and when the first text went out."""
        stop = StopFilter(job.stops)
        first: float | None = None
        for piece in pieces:
            if job.cancelled.is_set():
                return "cancelled", first
            text = stop.feed(piece)
            if text:
                first = first or time.perf_counter()
                emit(TokenEvent(text))
            if stop.stopped:
                return "stop", first
        stop.flush()
        return gen.finish_reason, first

    @staticmethod
    def _done(job: Job, gen: Generation, reason: str, first: float | None) -> DoneEvent:
        end = time.perf_counter()
        # tokens/s counts the tokens after the first, over the time after the first
        decode = end - first if first and gen.completion_tokens > 1 else 0.0
        return DoneEvent(
            stop_reason=reason,  # type: ignore[arg-type]
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            ttft_s=round(first - job.admitted_at, 4) if first else None,
            tokens_per_s=round((gen.completion_tokens - 1) / decode, 2) if decode > 0 else None,
            prompt_tokens_evaluated=gen.prompt_tokens_evaluated,
            truncated_turns=job.truncated_turns,
        )

    def close(self) -> None:
        for job in self._waiting:
            job.cancelled.set()
        for job in self._running:
            job.cancelled.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
