"""Every route of our API, declared once: its method and path, its request and response types.

The server registers its handlers from these declarations (and from them derives the paths the
API key guards and the routes its metrics name); the browser builds its calls from the same
ones, so a URL, a method or a type cannot drift between the two.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from msgspec import Struct

from wire.events import (
    AnswerEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    LoadingEvent,
    ProgressEvent,
    QueuedEvent,
    ThoughtEvent,
    TokenEvent,
    ToolCallEvent,
)
from wire.types import (
    ConverseRequest,
    Download,
    DownloadList,
    DownloadRequest,
    Health,
    HubRepo,
    ModelList,
    TokenCount,
    TokensRequest,
    ToolCallRequest,
    ToolCallResult,
    ToolList,
)

Req = TypeVar("Req", bound=Struct)
Res = TypeVar("Res", bound=Struct)
Ev = TypeVar("Ev", bound=Struct)


class Route(Generic[Req, Res]):
    """One route. `path` may hold `{name}` parameters (`url` fills them in); `request` is the
    type its JSON body decodes as (None: no body), `response` the type of its JSON answer (None:
    none, e.g. a 204, or an event stream); `guarded`: the API key, when one is set, is required."""

    def __init__(
        self,
        method: str,
        path: str,
        request: type[Req] | None = None,
        response: type[Res] | None = None,
        guarded: bool = True,
    ) -> None:
        self.method = method
        self.path = path
        self.request = request
        self.response = response
        self.guarded = guarded

    def url(self, **params: str) -> str:
        return self.path.format(**params)

    def decode(self, body: str | bytes) -> Res:
        """The response body as its declared type (msgspec.DecodeError or ValidationError if it is not)."""
        if self.response is None:
            raise TypeError(f"{self.method} {self.path} answers no JSON body")
        return msgspec.json.decode(body, type=self.response)


class Rpc(Route[Req, Ev]):
    """A streaming route: its answer is server-sent events, named by type.

    `Ev` is the union of the event types, so both sides see typed events.
    """

    def __init__(
        self, method: str, path: str, request: type[Req] | None, events: dict[str, type[Ev]]
    ) -> None:
        super().__init__(method, path, request)
        self.events = events
        self.event_names: dict[type[Ev], str] = {cls: name for name, cls in events.items()}
        self._decoders: dict[str, msgspec.json.Decoder[Ev]] = {
            name: msgspec.json.Decoder(cls) for name, cls in events.items()
        }

    def encode_event(self, event: Ev) -> tuple[str, str]:
        return self.event_names[type(event)], msgspec.json.encode(event).decode()

    def decode_event(self, name: str, data: str) -> Ev:
        decoder = self._decoders.get(name)
        if decoder is None:
            raise ValueError(f"unknown event {name!r}")
        return decoder.decode(data)


ANSWER_EVENTS: dict[str, type[Event]] = {
    "answer": AnswerEvent, "queued": QueuedEvent, "loading": LoadingEvent, "progress": ProgressEvent,
    "thought": ThoughtEvent, "token": TokenEvent, "tool_call": ToolCallEvent, "done": DoneEvent, "error": ErrorEvent,
}

HEALTH: Route[Any, Health] = Route("GET", "/health", response=Health, guarded=False)
"""200 once the default model is up, 503 (with Retry-After) while it loads."""

CONVERSE: Rpc[ConverseRequest, Event] = Rpc("POST", "/api/converse", ConverseRequest, ANSWER_EVENTS)
"""Start an answer; its first event names it, for ANSWER and STOP_ANSWER."""

ANSWER: Rpc[Any, Event] = Rpc("GET", "/api/answers/{answer_id}", None, ANSWER_EVENTS)
"""An answer's events from its start, as CONVERSE sent them. Unknown or expired: 404 `answer_not_found`."""

STOP_ANSWER: Route[Any, Any] = Route("POST", "/api/answers/{answer_id}/stop")
"""Cancel an answer now (204); its readers get `done` with stop reason "cancelled"."""

MODELS: Route[Any, ModelList] = Route("GET", "/api/models", response=ModelList)

TOKENS: Route[TokensRequest, TokenCount] = Route("POST", "/api/tokens", TokensRequest, TokenCount)
# the MCP servers' tools, and a call of one
TOOLS: Route[Any, ToolList] = Route("GET", "/api/tools", response=ToolList)
CALL_TOOL: Route[ToolCallRequest, ToolCallResult] = Route("POST", "/api/tools/call", ToolCallRequest, ToolCallResult)

# a model of the list (by its name): loaded now, unloaded, or its file deleted (a models folder's file only)
LOAD_MODEL: Route[Any, Any] = Route("POST", "/api/models/{name}/load")
UNLOAD_MODEL: Route[Any, Any] = Route("POST", "/api/models/{name}/unload")
DELETE_MODEL: Route[Any, Any] = Route("POST", "/api/models/{name}/delete")

# models from the Hugging Face Hub: a repository's files, and downloads into the models folder
HUB_REPO: Route[Any, HubRepo] = Route("GET", "/api/hub/{owner}/{name}", response=HubRepo)
DOWNLOADS: Route[Any, DownloadList] = Route("GET", "/api/downloads", response=DownloadList)
START_DOWNLOAD: Route[DownloadRequest, Download] = Route("POST", "/api/downloads", DownloadRequest, Download)
CANCEL_DOWNLOAD: Route[Any, Any] = Route("POST", "/api/downloads/{download_id}/cancel")
"""Stop a download (204); what it fetched so far is deleted."""

ROUTES: tuple[Route[Any, Any], ...] = (HEALTH, CONVERSE, ANSWER, STOP_ANSWER, MODELS, TOKENS)
