"""The heap (server.heap): what startup leaves is frozen out of the collector's passes, and what
comes after is still collected."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from server import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the other tests run with the heap as it was


def full_pass_s() -> float:
    """The CPU time of one full collection, on this thread (unlike wall time, not the machine's load)."""
    t0 = time.thread_time()
    gc.collect()
    return time.thread_time() - t0


def test_settle_freezes_what_lives_and_a_full_pass_skips_it(unfrozen: None) -> None:
    kept = [[i] for i in range(200_000)]  # a heap the size of the server's with its model up
    before = min(full_pass_s() for _ in range(3))
    frozen = heap.settle()
    after = min(full_pass_s() for _ in range(3))
    assert frozen >= len(kept)
    assert after < before / 5, (before, after)
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # garbage made after settling is still collected
