"""The models the server has and can get, as the Models dialog shows them: each model's facts,
load, unload and delete; a Hugging Face repository's files; the downloads and their progress.

Downloads run on the server: the page only starts, cancels and watches them (polling while one
runs), so a reloaded page finds them again. No DOM here: the browser comes in through the RPC
`Client`; tests hand in a fake.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from reaktiv import Signal

from client.rpc import Client
from wire.events import ErrorEvent
from wire.routes import CANCEL_DOWNLOAD, DELETE_MODEL, DOWNLOADS, HUB_REPO, LOAD_MODEL, START_DOWNLOAD, UNLOAD_MODEL
from wire.types import TEMPLATE_NAMES, Download, DownloadList, DownloadRequest, HubFile, HubRepo, ModelInfo

POLL_S = 1.0  # how often a running download is asked after
RUNNING = ("downloading", "checking")
# "owner/name", or the address of a repository's page (whatever the Hub's host), as people paste it
_REPO = re.compile(r"^(?:https?://[^/\s]+/)?(?:models/)?([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*?)(?:/.*)?/?$")
ACTIONS = {"load": LOAD_MODEL, "unload": UNLOAD_MODEL, "delete": DELETE_MODEL}


def size_text(n: int) -> str:
    """Bytes in decimal units, as the Hub and disks count them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def facts(model: ModelInfo) -> str:
    """A model's facts in a line: size, quantization, context, template, state."""
    if not model.usable:
        return f"Cannot be used: {model.reason}"
    parts = [size_text(model.size) if model.size else "", model.quant,
             f"{model.n_ctx:,} tokens of context" if model.n_ctx else "",
             template_words(model.template),
             "takes images" if model.vision else "", "loaded" if model.loaded else ""]
    return " · ".join(p for p in parts if p)


def template_words(template: str) -> str:
    """A model's prompt template in words: a known id by its name, a file by its path."""
    if not template:
        return ""
    return f"template: {TEMPLATE_NAMES.get(template, template)}"


def hub_facts(file: HubFile) -> str:
    fit = "fits this machine's free memory" if file.fits else "more than this machine's free memory"
    parts = [size_text(file.size), file.quant, fit, "the largest that fits" if file.best else ""]
    return " · ".join(p for p in parts if p)


def time_left(download: Download) -> str:
    if download.speed <= 0 or download.done >= download.total:
        return ""
    seconds = (download.total - download.done) / download.speed
    return f"about {seconds / 60:.0f} min left" if seconds >= 90 else f"about {max(1, round(seconds))} s left"


def progress_text(download: Download) -> str:
    if download.status == "downloading":
        parts = [f"{size_text(download.done)} of {size_text(download.total)}",
                 f"{size_text(round(download.speed))}/s" if download.speed else "", time_left(download)]
        return " · ".join(p for p in parts if p)
    return {
        "checking": "Checking it against the Hub's hash…",
        "done": "Downloaded: it is in the model list.",
        "cancelled": "Cancelled: nothing was kept.",
    }.get(download.status, f"Failed: {download.error}")


def repo_of(text: str) -> str | None:
    """The repository a user typed or pasted ("owner/name", or its page's address); None if it is none."""
    match = _REPO.match(text.strip())
    return match[1] if match else None


class Catalog:
    """The dialog's state, in signals; `refresh_models()` asks the server for its list again."""

    def __init__(
        self, client: Client, spawn: Callable[[Any], Any], refresh_models: Callable[[], Awaitable[None]]
    ) -> None:
        self.client, self.spawn, self.refresh_models = client, spawn, refresh_models
        self.downloads: Signal[DownloadList | None] = Signal(None)
        self.hub: Signal[HubRepo | None] = Signal(None)
        self.note: Signal[str] = Signal("")  # why the last thing asked did not happen
        self._watching = False

    def _said(self, answer: object) -> bool:
        """True when the server did it; otherwise its reason is the note."""
        if isinstance(answer, ErrorEvent):
            self.note.set(answer.message)
            return False
        self.note.set("")
        return True

    async def act(self, action: str, name: str) -> None:
        """"load", "unload" or "delete" the model `name`."""
        if self._said(await self.client.call(ACTIONS[action], name=name)):
            await self.refresh_models()

    async def browse(self, text: str) -> None:
        """List the GGUF files of the repository the user named."""
        repo = repo_of(text)
        if repo is None:
            self.note.set(f"{text.strip() or 'That'} is not a repository: write it as owner/name")
            return
        owner, name = repo.split("/")
        answer = await self.client.call(HUB_REPO, owner=owner, name=name)
        if self._said(answer) and isinstance(answer, HubRepo):
            self.hub.set(answer)

    async def download(self, name: str, vision: bool) -> None:
        hub = self.hub()
        if hub is None:
            return
        if self._said(await self.client.call(START_DOWNLOAD, DownloadRequest(hub.repo, name, vision))):
            await self.watch()

    async def cancel(self, download_id: str) -> None:
        if self._said(await self.client.call(CANCEL_DOWNLOAD, download_id=download_id)):
            await self.poll()

    async def poll(self) -> DownloadList | None:
        """Ask the server for its downloads now; one that has just ended refreshes the model list."""
        answer = await self.client.call(DOWNLOADS)
        if not isinstance(answer, DownloadList):
            return None
        before = {d.id: d.status for d in (self.downloads() or DownloadList([])).downloads}
        self.downloads.set(answer)
        if any(d.status == "done" and before.get(d.id) != "done" for d in answer.downloads):
            await self.refresh_models()
        return answer

    async def watch(self) -> None:
        """Follow the downloads while any runs (one watcher at a time)."""
        if self._watching:
            return
        self._watching = True
        try:
            while (listed := await self.poll()) is not None and any(d.status in RUNNING for d in listed.downloads):
                await asyncio.sleep(POLL_S)
        finally:
            self._watching = False
