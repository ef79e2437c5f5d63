"""Every route of our API, with its request, response and event types."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from msgspec import Struct

from wire.events import AnswerEvent, DoneEvent, ErrorEvent, Event, LoadingEvent, QueuedEvent, ThoughtEvent, TokenEvent
from wire.types import ConverseRequest

MODELS_PATH = "/api/models"
# `GET {ANSWERS_PATH}/{id}`: an answer's events from the start (SSE, as CONVERSE sends them);
# `POST {ANSWERS_PATH}/{id}/stop`: cancel it (204). Unknown or expired ids: 404 `answer_not_found`.
ANSWERS_PATH = "/api/answers"


def answer_path(answer_id: str) -> str:
    return f"{ANSWERS_PATH}/{answer_id}"


def stop_path(answer_id: str) -> str:
    return f"{answer_path(answer_id)}/stop"


TOKENS_PATH = "/api/tokens"


Req = TypeVar("Req", bound=Struct)
Ev = TypeVar("Ev", bound=Struct)


class Rpc(Generic[Req, Ev]):
    """One streaming RPC: the route, its request type, and its SSE events by name.

    The server registers a handler for it and the browser builds its stub from it,
    so the URL, the types and the event names exist in one place only. `Ev` is the
    union of the event types, so both sides see typed events.
    """

    def __init__(self, path: str, request: type[Req], events: dict[str, type[Ev]]) -> None:
        self.path = path
        self.request = request
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


CONVERSE: Rpc[ConverseRequest, Event] = Rpc(
    "/api/converse",
    ConverseRequest,
    {
        "token": TokenEvent, "thought": ThoughtEvent, "queued": QueuedEvent, "loading": LoadingEvent,
        "done": DoneEvent, "error": ErrorEvent,
        "answer": AnswerEvent,
    },
)
