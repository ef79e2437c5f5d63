"""The chats' images in the browser: an IndexedDB database of its own, one Blob per image, keyed by
the digest of its bytes (client.pictures.PictureStore). The chats' records stay in their own store
(client.storage) and name images by digest only, so an image never weighs on a chat's record.

Each write is one transaction: when the browser's quota is full it aborts, and IndexedDB keeps
every record as it was before it (nothing is deleted or cut short); `put` then raises StorageFull.
Browser only (`js` is imported inside).
"""

from __future__ import annotations

import asyncio
from typing import Any

from client.pictures import Picture, StorageFull

DATABASE = "snake_llama_images"
STORE = "images"
QUOTA = "QuotaExceededError"


def _settled(target: Any, ok: str, failed: tuple[str, ...]) -> asyncio.Future[Any]:
    """A future that the IndexedDB `target` (a request or a transaction) resolves on its `ok` event
    and fails on any of `failed`: StorageFull for the quota, else OSError with the browser's words."""
    from pyodide.ffi import create_proxy

    future: asyncio.Future[Any] = asyncio.get_event_loop().create_future()

    def resolve(_event: Any) -> None:
        if not future.done():
            future.set_result(getattr(target, "result", None))

    def reject(event: Any) -> None:
        # a request's error reaches its transaction first through the event, before transaction.error is set
        error = getattr(event.target, "error", None) or target.error
        if future.done():
            return
        name = str(error.name) if error else "AbortError"
        future.set_exception(StorageFull(str(error.message)) if name == QUOTA else OSError(f"{name}: {error}"))

    proxies = [create_proxy(resolve), *(create_proxy(reject) for _ in failed)]
    for kind, proxy in zip((ok, *failed), proxies, strict=True):
        setattr(target, f"on{kind}", proxy)
    future.add_done_callback(lambda _f: [p.destroy() for p in proxies])  # one event fires; all are let go
    return future


class ImageStore:
    """An open database of images (`open_images`)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def _transaction(self, mode: str) -> tuple[Any, Any]:
        transaction = self._db.transaction(STORE, mode)
        return transaction, transaction.objectStore(STORE)

    async def put(self, digest: str, picture: Picture) -> None:
        from js import Blob, Uint8Array
        from pyodide.ffi import to_js

        from client.browser import to_init

        blob = Blob.new(to_js([Uint8Array.new(picture.data)]), to_init({"type": picture.type}))
        transaction, store = self._transaction("readwrite")
        done = _settled(transaction, "complete", ("abort", "error"))
        store.put(blob, digest)
        await done  # the write is on disk only once its transaction completes

    async def get(self, digest: str) -> Picture | None:
        _, store = self._transaction("readonly")
        blob = await _settled(store.get(digest), "success", ("error",))
        if not blob:  # JS undefined: never stored (storage was full then)
            return None
        return Picture(str(blob.type), bytes((await blob.arrayBuffer()).to_bytes()))

    async def digests(self) -> list[str]:
        _, store = self._transaction("readonly")
        keys = await _settled(store.getAllKeys(), "success", ("error",))
        return [str(key) for key in keys]

    async def delete(self, digest: str) -> None:
        transaction, store = self._transaction("readwrite")
        done = _settled(transaction, "complete", ("abort", "error"))
        store.delete(digest)
        await done


async def open_images() -> ImageStore:
    from js import indexedDB
    from pyodide.ffi import create_once_callable

    request = indexedDB.open(DATABASE, 1)

    def upgrade(_event: Any) -> None:  # the first visit: the database is new
        request.result.createObjectStore(STORE)

    request.onupgradeneeded = create_once_callable(upgrade)
    return ImageStore(await _settled(request, "success", ("error", "blocked")))
