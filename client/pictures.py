"""The bytes of the chats' images, by digest: held in memory for this page, and kept in a store
of their own (IndexedDB Blobs in the browser, client.image_store) apart from the chats' records.

A write that fails (the browser's storage quota is full) raises `StorageFull` and changes nothing
that was stored: the image stays in memory, so this page still shows and sends it, and every chat
saved before is as it was. No DOM here; the browser's store comes in as a `PictureStore`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from msgspec import Struct
from reaktiv import Signal

from client.images import ImageRef, data_url, digest_of

_DIGEST = re.compile(r"[0-9a-f]{64}")
HELD, LOST = "held", "lost"  # an image's state here: its bytes are in memory, or the store has not got them


class Picture(Struct, frozen=True):
    """An image's bytes and their media type (an export carries `data` as base64)."""

    type: str
    data: bytes


class StorageFull(Exception):
    """The browser would not store the image: its storage quota is used up."""


class PictureStore(Protocol):
    async def put(self, digest: str, picture: Picture) -> None:
        """Store the picture, or raise StorageFull (then nothing changed)."""

    async def get(self, digest: str) -> Picture | None: ...
    async def digests(self) -> list[str]: ...
    async def delete(self, digest: str) -> None: ...


class MemoryStore:
    """A PictureStore that forgets at the end of the page (no browser store: tests, CPython)."""

    def __init__(self) -> None:
        self.pictures: dict[str, Picture] = {}

    async def put(self, digest: str, picture: Picture) -> None:
        self.pictures[digest] = picture

    async def get(self, digest: str) -> Picture | None:
        return self.pictures.get(digest)

    async def digests(self) -> list[str]:
        return list(self.pictures)

    async def delete(self, digest: str) -> None:
        self.pictures.pop(digest, None)


def referenced(records: Mapping[str, object]) -> set[str]:
    """Every digest that any stored record names. Read from the records' raw text, not decoded
    chats, so that a record this page cannot read still keeps its images."""
    return {d for value in records.values() if isinstance(value, str) for d in _DIGEST.findall(value)}


class Pictures:
    """The images this page has, by digest. `loaded` changes whenever one becomes available (views
    that show images read it, so they show each once its bytes are here)."""

    def __init__(self, store: PictureStore) -> None:
        self.store = store
        self._held: dict[str, Picture] = {}
        self._missing: set[str] = set()  # asked of the store, which has not got them
        self._asking: set[str] = set()  # being read from the store now
        self.loaded: Signal[int] = Signal(0)

    def get(self, digest: str) -> Picture | None:
        return self._held.get(digest)

    def state(self, digest: str) -> str:
        """HELD, LOST, or "" while the store has not been asked. Reads `loaded`, so an Effect that
        asks shows the image once it comes."""
        self.loaded()
        return HELD if digest in self._held else LOST if digest in self._missing else ""

    def url(self, image: ImageRef) -> str:
        """The image as a data URL; "" when this page does not have it (the store lost it or never had it)."""
        picture = self._held.get(image.digest)
        return data_url(picture.type, picture.data) if picture is not None else ""

    def hold(self, picture: Picture) -> str:
        """Keep `picture` in memory only; returns its digest."""
        digest = digest_of(picture.data)
        if digest not in self._held:
            self._held[digest] = picture
            self._missing.discard(digest)
            self.loaded.update(lambda n: n + 1)
        return digest

    async def keep(self, picture: Picture) -> str:
        """Hold `picture` and store it; returns its digest. StorageFull if the store would not take
        it (it is held all the same, for this page)."""
        digest = self.hold(picture)
        await self.store.put(digest, picture)
        return digest

    async def load(self, images: Iterable[ImageRef]) -> None:
        """Bring those of `images` that are not in memory from the store (once each: one the store
        has not got is not asked for again)."""
        found = False  # any image's state changed
        for digest in dict.fromkeys(i.digest for i in images):
            if digest in self._held or digest in self._missing or digest in self._asking:
                continue
            self._asking.add(digest)
            try:
                picture = await self.store.get(digest)
            finally:
                self._asking.discard(digest)
            if picture is None:
                self._missing.add(digest)
                found = True  # its state changed too: views say it is lost
            else:
                self._held[digest] = picture
                found = True
        if found:
            self.loaded.update(lambda n: n + 1)

    async def collect(self, keep: set[str]) -> int:
        """Delete the stored images whose digests are not in `keep` (attachments removed unsent,
        chats deleted); returns how many went."""
        gone = 0
        for digest in await self.store.digests():
            if digest not in keep and digest not in self._held:
                await self.store.delete(digest)
                gone += 1
        return gone
