"""Scheduling logic with a scripted engine (the real model's behaviour is in test_app.py and test_load.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

import pytest

from server.engines.base import Piece, Progress, Text, Usage
from server.events import Done, Failed, Queued
from server.sampling import Sampling
from server.scheduler import PROGRESS_EVERY_S, QueueFull, Scheduler
from tests.fakes import ScriptedEngine, admit
from tests.harness import hang_up, run_async


async def collect(scheduler: Scheduler, name: str, max_tokens: int = 5, tokens: int = 1) -> list[object]:
    job = admit(scheduler, name, max_tokens, tokens)
    return [event async for event in scheduler.events(job)]


def test_one_at_a_time_first_come_first_served() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        results = await asyncio.gather(*(collect(scheduler, f"p{i}") for i in range(5)))
        assert engine.ran == [f"p{i}" for i in range(5)]
        assert engine.max_active == 1
        for i, events in enumerate(results):
            assert isinstance(events[-1], Done) and events[-1].stop_reason == "length"
            queued = [e.position for e in events if isinstance(e, Queued)]
            assert queued == list(range(i, 0, -1))  # positions count down as the queue moves
            assert "".join(e.text for e in events if isinstance(e, Text)) == "w0 w1 w2 w3 w4"
        scheduler.close()

    run_async(main())


def test_full_queue_is_refused_at_once() -> None:
    async def main() -> None:
        scheduler = Scheduler(ScriptedEngine(), queue_size=2)
        jobs = [admit(scheduler, f"p{i}", 3) for i in range(3)]  # 1 running, 2 waiting
        with pytest.raises(QueueFull):
            admit(scheduler, "one too many")
        for job in jobs:
            assert isinstance([e async for e in scheduler.events(job)][-1], Done)
        admit(scheduler, "room again", 1)
        scheduler.close()

    run_async(main())


def test_cancelled_while_queued_never_runs() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        first = admit(scheduler, "first")
        doomed = admit(scheduler, "doomed")
        stream = scheduler.events(doomed)
        assert await anext(stream) == Queued(1)
        await hang_up(stream)  # the client went away while waiting
        last = await collect(scheduler, "last", 2)
        assert isinstance([e async for e in scheduler.events(first)][-1], Done)
        assert isinstance(last[-1], Done)
        assert engine.ran == ["first", "last"]
        scheduler.close()

    run_async(main())


def test_cancel_while_running_stops_within_a_token_and_frees_the_model() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=8)
        job = admit(scheduler, "long", 200)
        stream = scheduler.events(job)
        assert isinstance(await anext(stream), Text)
        await hang_up(stream)
        nxt = await collect(scheduler, "next", 1)
        assert engine.produced["long"] <= 3  # the next request got the model after a token or two
        assert isinstance(nxt[-1], Done)
        scheduler.close()

    run_async(main())


def test_engine_fault_is_an_error_event_and_the_next_request_is_served() -> None:
    async def main() -> None:
        engine = ScriptedEngine(fail_at=2)
        scheduler = Scheduler(engine, queue_size=8)
        events = await collect(scheduler, "boom")
        assert isinstance(events[-1], Failed) and "scripted fault" in events[-1].message
        assert [e.text for e in events if isinstance(e, Text)] == ["w0", " w1"]
        engine.fail_at = None
        assert isinstance((await collect(scheduler, "fine"))[-1], Done)
        scheduler.close()

    run_async(main())


def test_an_engine_with_parallel_slots_runs_that_many_at_once() -> None:
    async def main() -> None:
        engine = ScriptedEngine(parallel=3)
        scheduler = Scheduler(engine, queue_size=8)
        results = await asyncio.gather(*(collect(scheduler, f"p{i}") for i in range(7)))
        assert engine.max_active == 3
        assert engine.ran[:3] == ["p0", "p1", "p2"] and sorted(engine.ran) == [f"p{i}" for i in range(7)]
        assert all(isinstance(events[-1], Done) for events in results)
        assert [e for e in results[6] if isinstance(e, Queued)][0] == Queued(4)
        scheduler.close()
        assert engine.closed

    run_async(main())


def test_answers_wait_rather_than_overflow_the_engines_kv_cache() -> None:
    async def main() -> None:
        # 8 slots, but room for only two answers of 40 prompt + 5 answer tokens at a time
        engine = ScriptedEngine(parallel=8, capacity=100)
        scheduler = Scheduler(engine, queue_size=8)
        results = await asyncio.gather(*(collect(scheduler, f"p{i}", 5, 40) for i in range(6)))
        assert engine.max_active == 2
        assert all(isinstance(events[-1], Done) for events in results)
        # a job bigger than the whole cache still runs alone (context fitting bounds one chat)
        assert isinstance((await collect(scheduler, "huge", 5, 500))[-1], Done)
        scheduler.close()

    run_async(main())


class ReadingEngine(ScriptedEngine):
    """Reads a 1,000-token prompt in 20 batches of 50, 30 ms each, then answers two words."""

    def _words(self, name: str, sampling: Sampling, usage: Usage) -> Generator[Piece, None, None]:
        for batch in range(21):
            yield Progress(batch * 50, 1000, 0)
            if batch < 20:
                time.sleep(0.03)
        yield Text("done ")
        yield Progress(1000, 1000, 0)  # an engine may report again: nobody needs it after the first text
        yield Text("now")


def test_progress_goes_up_a_few_times_a_second_and_only_before_the_first_text() -> None:
    async def main() -> None:
        scheduler = Scheduler(ReadingEngine(), queue_size=8)
        events = await collect(scheduler, "long")
        progress = [e for e in events if isinstance(e, Progress)]
        assert 1 <= len(progress) <= 0.6 / PROGRESS_EVERY_S + 1  # 0.6 s of reading
        assert all(0 < p.processed < p.total for p in progress)
        assert [p.processed for p in progress] == sorted(p.processed for p in progress)
        last_progress = max(i for i, e in enumerate(events) if isinstance(e, Progress))
        assert last_progress < min(i for i, e in enumerate(events) if isinstance(e, Text))
        scheduler.close()

    run_async(main())


def test_slots_go_round_the_names_fewest_running_first() -> None:
    async def main() -> None:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, queue_size=16)
        asked = [("a", 4), ("b", 2), ("c", 1)]  # a's burst comes first
        jobs = [admit(scheduler, f"{owner}{i}", 2, owner=owner) for owner, n in asked for i in range(n)]
        for job in jobs:
            assert isinstance([e async for e in scheduler.events(job)][-1], Done)
        # round robin: a0 was running; then whoever waited longest since their last turn
        assert engine.ran == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]
        scheduler.close()

    run_async(main())


def test_a_name_at_its_cap_leaves_the_free_slot_to_another() -> None:
    async def main() -> None:
        engine = ScriptedEngine(parallel=2)
        scheduler = Scheduler(engine, queue_size=16, per_name=1)
        first, second = (admit(scheduler, f"a{i}", 3, owner="a") for i in range(2))
        assert first.started.done() and not second.started.done()  # a slot is free, but a has its one
        other = admit(scheduler, "b0", 3, owner="b")
        assert other.started.done()
        for job in (first, second, other):
            assert isinstance([e async for e in scheduler.events(job)][-1], Done)
        assert engine.max_active == 2 and engine.ran.index("a1") > engine.ran.index("b0")
        scheduler.close()

    run_async(main())
