"""One shared model, many requests: as many answers at once as the engine has slots, then a
bounded queue, shared fairly between the names of the keys that ask (FIFO within a name, and
FIFO for all when no keys are named).

Each running answer has a worker thread that passes the engine's pieces up, its text through the
stop filter and its thoughts split from its answer (`server.events`); the event loop only moves
events to the clients, so it stays responsive. A request cancelled while queued never reaches
the model; one cancelled while running stops within a token, and its
slot goes straight to the next request in the queue.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any

from server.engines.base import Engine, Generation, Progress, Prompt, Text, Thought, Usage
from server.events import Done, Event, Failed, Queued
from server.reasoning import NoThoughts, Part, Splitter
from server.sampling import Sampling
from server.stops import StopFilter
from wire.events import StopReason

PROGRESS_EVERY_S = 0.25  # the least time between two progress events of one answer, and before the first


class QueueFull(Exception):
    """Every queue slot is taken; the client should retry later."""


class ClientBusy(Exception):
    """This client address already has as many answers as it may have at once."""


@dataclass(frozen=True)
class Caller:
    """Who asks for an answer: the address it counts against (MAX_ANSWERS_PER_CLIENT; None: not
    counted) and the name of the key it sent ("": none), which the queue shares slots between."""

    address: str | None = None
    name: str = ""


class ClientAnswers:
    """The answers each client address has being prepared, waiting or running, across every model:
    one address that opens many and goes away holds at most `cap` of the slots and queue places."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: Counter[str] = Counter()

    def take(self, client: str | None) -> Callable[[], None]:
        """Count one more answer for `client` (None: not counted), or refuse it; the answer calls
        what this returns once it ends (calling it again does nothing)."""
        if client is None:
            return lambda: None
        if self._held[client] >= self.cap:
            raise ClientBusy(f"this address already has {self._held[client]} answers running or waiting")
        self._held[client] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[client] -= 1
                if not self._held[client]:
                    del self._held[client]

        return release


@dataclass(eq=False)  # jobs are compared and hashed by identity
class Job:
    prompt: Prompt
    sampling: Sampling
    truncated_turns: int = 0
    stops: tuple[str, ...] = ()
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    events: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    admitted_at: float = field(default_factory=time.perf_counter)
    release: Callable[[], None] = lambda: None  # gives back what admission counted (a client's place)
    owner: str = ""  # the name of the key that asked: slots are shared fairly between names
    started_at: float | None = None


class Reservation:
    """A queue place taken before a request's costly preparation (fitting the chat into the
    context), so that the preparation is bounded by the queue too; `admit` turns it into a job."""

    def __init__(self, scheduler: Scheduler, release: Callable[[], None], owner: str = "") -> None:
        self.scheduler = scheduler
        self.release = release
        self.owner = owner

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.scheduler._preparing -= 1
        self.release()  # nothing once admitted: the job holds the place then

    def admit(self, prompt: Prompt, sampling: Sampling, truncated_turns: int = 0, stops: tuple[str, ...] = ()) -> Job:
        job = self.scheduler.admit(prompt, sampling, truncated_turns, stops, self.owner)
        job.release, self.release = self.release, lambda: None  # the job gives the place back now
        return job


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        queue_size: int = 32,
        on_done: Callable[[Done], None] | None = None,
        clients: ClientAnswers | None = None,
        per_name: int = 0,
    ) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self.per_name = per_name  # the most answers one key's name may have running (0: no cap)
        self.on_done = on_done
        self.clients = clients or ClientAnswers(cap=1 << 30)
        self.parallel = max(1, engine.parallel)
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self._preparing = 0
        self._turns = 0  # answers started so far: when each name last had one is its place in the round
        self._last_turn: dict[str, int] = {}
        self._moved = asyncio.Event()
        self._worker = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="model")

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model: being prepared or queued."""
        return len(self._waiting) + self._preparing

    def reserve(self, caller: Caller | None = None) -> Reservation:
        """A place for one request, held while it is prepared (`with` it), or QueueFull /
        ClientBusy at once: every slot and queue place is counted, those being prepared included."""
        if len(self._running) + self.queue_depth >= self.parallel + self.queue_size:
            raise QueueFull(f"the model is busy and {self.queue_depth} requests are waiting")
        caller = caller or Caller()
        reservation = Reservation(self, self.clients.take(caller.address), caller.name)
        self._preparing += 1
        return reservation

    async def idle(self) -> None:
        """Return once no answer runs or waits."""
        while self._running or self._waiting:
            await self._moved.wait()

    def admit(
        self, prompt: Prompt, sampling: Sampling, truncated_turns: int = 0, stops: tuple[str, ...] = (),
        owner: str = "",
    ) -> Job:
        """Take a request or refuse it at once (before any response starts).

        `stops` are extra stop strings, hidden like the prompt's own markers (which always apply);
        `owner`: the name of the key that asked.
        """
        job = Job(prompt, sampling, truncated_turns, prompt.stops + tuple(s for s in stops if s), owner=owner)
        self._waiting.append(job)
        self._start_waiting()
        if not job.started.done() and len(self._waiting) > self.queue_size:
            self._waiting.remove(job)
            raise QueueFull(f"the model is busy and {len(self._waiting)} requests are waiting")
        return job

    def _start_waiting(self) -> None:
        """Start waiting jobs while the one whose turn it is fits."""
        while (job := self._turn()) is not None and self._fits(job):
            self._waiting.remove(job)
            self._start(job)

    def _turn(self) -> Job | None:
        """The waiting job whose turn it is: the first of the name with the fewest answers running,
        and among equals the one whose last answer started longest ago; none at their cap."""
        running = Counter(j.owner for j in self._running)
        firsts: dict[str, Job] = {}
        for job in self._waiting:
            if job.owner not in firsts and not (self.per_name and running[job.owner] >= self.per_name):
                firsts[job.owner] = job
        if not firsts:
            return None
        return min(firsts.values(), key=lambda j: (running[j.owner], self._last_turn.get(j.owner, -1)))

    def _fits(self, job: Job) -> bool:
        """A free slot, and room in the engine's KV cache for the job's prompt and whole answer
        budget, so that answers running together can never overflow it (an empty engine takes
        any job: context fitting already bounds one)."""
        if len(self._running) >= self.parallel:
            return False
        held = sum(j.prompt.n_tokens + j.sampling.max_tokens for j in self._running)
        return not self._running or held + job.prompt.n_tokens + job.sampling.max_tokens <= self.engine.capacity

    async def events(self, job: Job) -> AsyncIterator[Event]:
        """The job's events; leaving the iteration early cancels the job."""
        try:
            async for queued in self._wait_turn(job):
                yield queued
            while (event := await job.events.get()) is not None:
                yield event
        finally:
            self.cancel(job)

    def cancel(self, job: Job) -> None:
        """End the job: one waiting never runs, one running stops at its next piece. Leaving
        `events` early does the same, once it has begun; before that, only this does."""
        job.cancelled.set()
        if job in self._waiting:
            self._waiting.remove(job)
            job.release()
            self._notify_moved()

    async def _wait_turn(self, job: Job) -> AsyncIterator[Queued]:
        shown = 0
        while not job.started.done():
            position = self._waiting.index(job) + 1
            if position != shown:
                shown = position
                yield Queued(position)
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
        self._turns += 1
        self._last_turn[job.owner] = self._turns
        job.started_at = time.perf_counter()
        job.started.set_result(None)
        future = loop.run_in_executor(self._worker, self._generate, job, loop)
        future.add_done_callback(lambda _: self._next(job))

    def _next(self, finished: Job) -> None:
        self._running.discard(finished)
        finished.release()
        for job in [j for j in self._waiting if j.cancelled.is_set()]:
            self._waiting.remove(job)
            job.release()
        self._start_waiting()
        self._notify_moved()

    def _generate(self, job: Job, loop: asyncio.AbstractEventLoop) -> None:
        """Runs on the model thread."""

        def emit(event: Event | None) -> None:
            loop.call_soon_threadsafe(job.events.put_nowait, event)

        try:
            # closing(): the answer ends (and frees its slot) however we leave it
            with closing(self.engine.stream(job.prompt, job.sampling)) as generation:
                reason, first, matched = self._pass_on(job, generation, emit)
            done = replace(self._done(job, generation.usage, reason, first, self.engine.model), stop_sequence=matched)
            if self.on_done:
                self.on_done(done)
            emit(done)
        except Exception as exc:  # an engine fault ends this answer, never the server
            emit(Failed("engine_error", f"the model failed while answering: {exc}"))
        finally:
            emit(None)

    @staticmethod
    def _pass_on(
        job: Job, generation: Generation, emit: Callable[[Event | None], None]
    ) -> tuple[StopReason, float | None, str | None]:
        """Pass the engine's pieces up: its text through the stop filter, then its thoughts split
        from its answer; return the stop reason, when the first text went out and the stop string
        that ended it, if one did."""
        stop = StopFilter(job.stops)
        split = Splitter(job.prompt.thinking) if job.prompt.may_think else NoThoughts()
        first: float | None = None
        shown = time.perf_counter()  # when progress last went up: a prompt read at once shows none

        def send(parts: list[Part]) -> None:
            nonlocal first
            for thought, text in parts:
                first = first or time.perf_counter()
                emit(Thought(text) if thought else Text(text))

        for piece in generation:
            if job.cancelled.is_set():
                return "cancelled", first, None
            if isinstance(piece, Text):
                send(split.feed(stop.feed(piece.text)))
                if stop.stopped:
                    send(split.flush())
                    return "stop", first, stop.matched
            elif isinstance(piece, Thought):
                send(split.feed_thought(piece.text))
            elif isinstance(piece, Progress):
                # a GPU reads batches many times a second: a few updates a second are enough to watch
                now = time.perf_counter()
                reading = piece.cached < piece.processed < piece.total  # read in part: not all from cache, not done
                if first is None and reading and now - shown >= PROGRESS_EVERY_S:
                    shown = now
                    emit(piece)
            else:  # tool calls go up as they are
                emit(piece)
        send(split.flush())
        return generation.usage.finish_reason, first, None

    @staticmethod
    def _done(job: Job, usage: Usage, reason: StopReason, first: float | None, model: str) -> Done:
        end = time.perf_counter()
        # tokens/s counts the tokens after the first, over the time after the first
        decode = end - first if first and usage.completion_tokens > 1 else 0.0
        return Done(
            stop_reason=reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            ttft_s=round(first - job.admitted_at, 4) if first else None,
            tokens_per_s=round((usage.completion_tokens - 1) / decode, 2) if decode > 0 else None,
            prompt_tokens_evaluated=usage.prompt_tokens_evaluated,
            truncated_turns=job.truncated_turns,
            model=model,
            draft_acceptance=usage.draft_acceptance,
            key_name=job.owner,
            queue_s=round((job.started_at or job.admitted_at) - job.admitted_at, 4),
        )

    def close(self) -> None:
        for job in self._waiting:
            job.cancelled.set()
        for job in self._running:
            job.cancelled.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.engine.close()
