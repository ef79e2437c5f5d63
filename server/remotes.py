"""Other OpenAI-compatible servers (REMOTES) as more models in the one list.

Every model a remote lists (`GET /v1/models`) is offered as `host:port/model` (the remote's label,
then its own name for the model), so that the user can tell the servers apart. The remote engine
(`server.engines.openai_engine`) stays the only code that talks to a model: one engine per remote
model, connected on first use like a local model is loaded.

A listing is believed for `FRESH_S`, so that listing the models, or starting an answer, asks each
remote at most that often, and a listing waits at most `LIST_TIMEOUT_S` for one. A remote that
does not answer keeps the models it listed last, marked unusable with the reason (or, never
listed, one entry under its label), and comes back by itself at the first listing after it does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.engines.base import ModelLoadError
from server.engines.loader import EngineLoader
from server.engines.openai_engine import Hints, OpenAIEngine, context_window
from server.settings import RemoteSpec, Settings
from wire.types import ModelInfo

log = logging.getLogger("snake_llama")

FRESH_S = 3.0  # how long a remote's listing is believed
LIST_TIMEOUT_S = 3.0  # the longest a listing (or an answer's start) waits for a remote to list its models
HINTS = Hints("REMOTES", "the remote's key in REMOTES (URL|KEY)")


class RemoteUnavailable(ModelLoadError):
    """The remote serving a model cannot be used now (down, refusing our key): worth a retry."""


def label(url: str) -> str:
    """How a remote's models are told apart: `host:port`, and the path before `/v1` if there is one."""
    parts = urlsplit(url)
    return parts.netloc + parts.path.removesuffix("/v1").rstrip("/")


class Remote:
    """One server of REMOTES and the models it listed last."""

    def __init__(self, spec: RemoteSpec, settings: Settings) -> None:
        self.spec = spec
        self.label = label(spec.url)
        self.models: dict[str, dict[str, Any]] = {}  # by our name: the remote's entry, as it listed it last
        self.error = "not asked yet"  # why it cannot be used now; "": it can
        self._settings = settings
        self._listed_at = -math.inf
        self._listing: asyncio.Task[None] | None = None
        headers = {"Authorization": f"Bearer {spec.key}"} if spec.key else {}
        self._http = httpx.Client(headers=headers, timeout=min(LIST_TIMEOUT_S, settings.openai_timeout))

    def owns(self, name: str) -> bool:
        return name == self.label or name.startswith(self.label + "/")

    async def refresh(self) -> None:
        """List the remote's models again unless the last listing is fresh; callers at once share one."""
        if time.monotonic() - self._listed_at < FRESH_S:
            return
        if self._listing is None:
            self._listing = asyncio.create_task(self._list())
        listing = self._listing
        try:
            await asyncio.shield(listing)
        finally:
            if listing.done() and self._listing is listing:
                self._listing = None

    async def _list(self) -> None:
        try:
            listed = await asyncio.to_thread(self._get_models)
        except RemoteUnavailable as exc:
            if exc.args[0] != self.error:
                log.warning("remote %s: %s", self.label, exc)
            self.error = str(exc)
        else:
            if self.error and self._listed_at > -math.inf:
                log.info("remote %s is back", self.label)
            self.models = {f"{self.label}/{entry['id']}": entry for entry in listed}
            self.error = ""
        self._listed_at = time.monotonic()

    def _get_models(self) -> list[dict[str, Any]]:
        url = f"{self.spec.url}/models"
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise RemoteUnavailable(f"cannot reach {url} ({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            raise RemoteUnavailable(f"{url} refused our key (HTTP {response.status_code}): check {HINTS.key}")
        if response.status_code != 200:
            raise RemoteUnavailable(f"{url} answered HTTP {response.status_code}")
        try:
            data = response.json()["data"]
            return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
        except (ValueError, KeyError, TypeError):
            raise RemoteUnavailable(f"{url} did not answer with an OpenAI model list") from None

    def infos(self) -> list[ModelInfo]:
        """Its models as the list shows them: usable while it answers. One never listed is one
        entry under its label, so that the list says why its models are missing."""
        if not self.models and self.error:
            return [ModelInfo(self.label, False, reason=self.error, engine="openai")]
        n_ctx = self._settings.n_ctx
        return [
            ModelInfo(name, not self.error, reason=self.error, engine="openai", n_ctx=context_window(entry, n_ctx))
            for name, entry in self.models.items()
        ]

    def loader(self, name: str) -> EngineLoader:
        """What connects the engine of the model `name` (listed by this remote)."""
        served = self.models[name]["id"]
        settings = replace(self._settings, openai_base_url=self.spec.url, openai_api_key=self.spec.key,
                           openai_model=served)
        return partial(OpenAIEngine.connect, settings, shown_as=name, hints=HINTS)

    def close(self) -> None:
        if self._listing is not None:
            self._listing.cancel()
        self._http.close()


class Remotes:
    """Every server of REMOTES."""

    def __init__(self, settings: Settings) -> None:
        self.all = [Remote(spec, settings) for spec in settings.remote_specs]

    def __bool__(self) -> bool:
        return bool(self.all)

    def owner(self, name: str) -> Remote | None:
        """The remote a model name belongs to (the longest label that fits, should one extend another)."""
        owners = [remote for remote in self.all if remote.owns(name)]
        return max(owners, key=lambda remote: len(remote.label)) if owners else None

    async def refresh(self) -> None:
        await asyncio.gather(*(remote.refresh() for remote in self.all))

    def infos(self) -> list[ModelInfo]:
        """Every remote's models, as last listed."""
        return [info for remote in self.all for info in remote.infos()]

    def close(self) -> None:
        for remote in self.all:
            remote.close()
