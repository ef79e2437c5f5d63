"""Saving the library in the browser (IndexedDB through `pyscript.storage`), throttled.

The page calls `Saver.changed()` on every change of the library. A finished change is written
at once; while an answer streams, writes are at most one per `interval` seconds, so a reload
mid-answer still finds most of it. The id the server gives an answer is written at once, so that
even a reload right after sending finds the answer to resume (client.streams.AnswerStreams.resume_all).
Only records that differ from what was last written go to the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

STORE_NAME = "snake_llama"


class Store(Protocol):
    """What the page uses of a pyscript Storage: a dict of strings whose writes `sync()` awaits."""

    def __getitem__(self, key: str) -> object: ...
    def __setitem__(self, key: str, value: str) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> Iterable[str]: ...
    def get(self, key: str) -> object: ...
    async def sync(self) -> None: ...


def diff(saved: dict[str, str], wanted: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to write and what to delete to turn `saved` into `wanted` (records of our own keys)."""
    writes = {k: v for k, v in wanted.items() if saved.get(k) != v}
    deletes = [k for k in saved if k not in wanted]
    return writes, deletes


async def open_store() -> Store:
    from pyscript import storage

    store: Store = await storage(STORE_NAME)
    return store


class Saver:
    """Keeps `store` (a dict-like pyscript Storage) in step with `records()`."""

    def __init__(
        self,
        store: Store,
        records: Callable[[], dict[str, str]],
        interval: float = 1.0,
        on_saving: Callable[[bool], None] = lambda saving: None,
    ) -> None:
        """`on_saving(True)` when writes start, `on_saving(False)` once the store holds them all."""
        self._store = store
        self._on_saving = on_saving
        self._syncing = 0
        self._records = records
        self._interval = interval
        self._saved: dict[str, str] = {k: v for k, v in records().items()}
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._answers: frozenset[str] = frozenset()

    def changed(self, streaming: bool, answers: frozenset[str] = frozenset()) -> None:
        """`streaming`: an answer is on its way; `answers`: the ids of those the server named."""
        new_answer = bool(answers - self._answers)
        self._answers = answers
        if not streaming or new_answer:
            self._cancel_timer()
            self.flush()
            return
        if self._timer is not None:
            return  # a write is already due
        wait = self._interval - (time.monotonic() - self._last)
        if wait <= 0:
            self.flush()
        else:
            self._timer = asyncio.get_event_loop().call_later(wait, self.flush)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def flush(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        wanted = self._records()
        writes, deletes = diff(self._saved, wanted)
        if not writes and not deletes:
            return
        for key, value in writes.items():
            self._store[key] = value
        for key in deletes:
            if key in self._store:
                del self._store[key]
        self._saved = dict(wanted)
        # Writes are queued by the store itself; sync() only waits for them, so a failure here
        # is reported but never blocks the chat.
        self._syncing += 1
        self._on_saving(True)
        asyncio.ensure_future(self._store.sync()).add_done_callback(self._synced)

    def _synced(self, _: object) -> None:
        self._syncing -= 1
        if not self._syncing:
            self._on_saving(False)
