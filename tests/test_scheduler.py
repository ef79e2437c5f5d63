"""Scheduling logic with a scripted engine (the real model's behaviour is in test_app/test_load)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from client.protocol import DoneEvent, ErrorEvent, QueuedEvent, SamplingParams, TokenEvent
from server.engines.base import Generation
from server.scheduler import QueueFull, Scheduler
from tests.conftest import run_async


class ScriptedEngine:
    """Yields `max_tokens` words slowly; records what ran and how many ran at once."""

    name = "scripted"
    model = "scripted"
    n_ctx = 4096

    def __init__(self, fail_at: int | None = None) -> None:
        self.ran: list[str] = []
        self.produced: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, params: SamplingParams, gen: Generation) -> Iterator[str]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.ran.append(prompt)
        self.produced[prompt] = 0
        try:
            for i in range(params.max_tokens or 5):
                if i == self.fail_at:
                    raise RuntimeError("scripted fault")
                time.sleep(0.02)
                gen.completion_tokens += 1
                self.produced[prompt] += 1
                yield f"w{i} "
            gen.finish_reason = "length"
        finally:
            with self.lock:
                self.active -= 1


async def collect(scheduler: Scheduler, prompt: str, max_tokens: int = 5) -> list[object]:
    job = scheduler.admit(prompt, SamplingParams(max_tokens=max_tokens))
    return [event async for event in scheduler.events(job)]


def test_one_at_a_time_first_come_first_served() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        results = await asyncio.gather(*(collect(scheduler, f"p{i}") for i in range(5)))
        assert engine.ran == [f"p{i}" for i in range(5)]
        assert engine.max_active == 1
        for i, events in enumerate(results):
            assert isinstance(events[-1], DoneEvent) and events[-1].stop_reason == "length"
            queued = [e.position for e in events if isinstance(e, QueuedEvent)]
            assert queued == list(range(i, 0, -1))  # positions count down as the queue moves
            assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == "w0 w1 w2 w3 w4"
        scheduler.close()

    run_async(main())


def test_full_queue_is_refused_at_once() -> None:
    async def main() -> None:
        scheduler = Scheduler(ScriptedEngine(), queue_size=2)
        jobs = [scheduler.admit(f"p{i}", SamplingParams(max_tokens=3)) for i in range(3)]  # 1 running, 2 waiting
        with pytest.raises(QueueFull):
            scheduler.admit("one too many", SamplingParams())
        for job in jobs:
            assert isinstance([e async for e in scheduler.events(job)][-1], DoneEvent)
        scheduler.admit("room again", SamplingParams(max_tokens=1))
        scheduler.close()

    run_async(main())


def test_cancelled_while_queued_never_runs() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        first = scheduler.admit("first", SamplingParams(max_tokens=5))
        doomed = scheduler.admit("doomed", SamplingParams(max_tokens=5))
        stream = scheduler.events(doomed)
        assert await anext(stream) == QueuedEvent(1)
        await stream.aclose()  # the client went away while waiting
        last = await collect(scheduler, "last", 2)
        assert isinstance([e async for e in scheduler.events(first)][-1], DoneEvent)
        assert isinstance(last[-1], DoneEvent)
        assert engine.ran == ["first", "last"]
        scheduler.close()

    run_async(main())


def test_cancel_while_running_stops_within_a_token_and_frees_the_model() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        job = scheduler.admit("long", SamplingParams(max_tokens=200))
        stream = scheduler.events(job)
        assert isinstance(await anext(stream), TokenEvent)
        await stream.aclose()
        started = time.perf_counter()
        nxt = await collect(scheduler, "next", 1)
        assert time.perf_counter() - started < 0.5
        assert engine.produced["long"] <= 3
        assert isinstance(nxt[-1], DoneEvent)
        scheduler.close()

    run_async(main())


def test_engine_fault_is_an_error_event_and_the_next_request_is_served() -> None:
    async def main() -> None:
        engine = ScriptedEngine(fail_at=2)
        scheduler = Scheduler(engine, queue_size=8)
        events = await collect(scheduler, "boom")
        assert isinstance(events[-1], ErrorEvent) and "scripted fault" in events[-1].message
        assert [e.text for e in events if isinstance(e, TokenEvent)] == ["w0", " w1"]
        engine.fail_at = None
        assert isinstance((await collect(scheduler, "fine"))[-1], DoneEvent)
        scheduler.close()

    run_async(main())


def test_an_engine_with_parallel_slots_runs_that_many_at_once() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        engine.parallel = 3  # type: ignore[attr-defined]
        scheduler = Scheduler(engine, queue_size=8)
        results = await asyncio.gather(*(collect(scheduler, f"p{i}") for i in range(7)))
        assert engine.max_active == 3
        assert engine.ran[:3] == ["p0", "p1", "p2"] and sorted(engine.ran) == [f"p{i}" for i in range(7)]
        assert all(isinstance(events[-1], DoneEvent) for events in results)
        assert [e for e in results[6] if isinstance(e, QueuedEvent)][0] == QueuedEvent(4)
        scheduler.close()

    run_async(main())
