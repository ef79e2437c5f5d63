"""The wire contract, defined once: the server imports this module, the browser loads the same file.

Keep it to the subset of Python shared by CPython 3.11 (server) and Pyodide's CPython 3.14.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

MAX_TEXT = 100_000

Text = Annotated[str, Meta(max_length=MAX_TEXT)]


class Message(Struct, forbid_unknown_fields=True):
    user: bool
    text: Text


class Conversation(Struct, forbid_unknown_fields=True):
    messages: Annotated[list[Message], Meta(min_length=1, max_length=2_000)]


class SamplingParams(Struct, forbid_unknown_fields=True, omit_defaults=True):
    max_tokens: Annotated[int, Meta(ge=1, le=32_768)] | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=0, le=1000)] | None = None
    repeat_penalty: Annotated[float, Meta(ge=0.5, le=2.0)] | None = None
    seed: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None
    system: Annotated[str, Meta(max_length=10_000)] | None = None


class ConverseRequest(Struct, forbid_unknown_fields=True):
    conversation: Conversation
    params: SamplingParams = msgspec.field(default_factory=SamplingParams)


StopReason = Literal["stop", "length", "cancelled"]


class TokenEvent(Struct):
    text: str


class QueuedEvent(Struct):
    position: int


class DoneEvent(Struct):
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    prompt_tokens_evaluated: int = 0
    truncated_turns: int = 0


class ErrorEvent(Struct):
    type: str
    message: str


class ErrorBody(Struct):
    error: ErrorEvent


Event = TokenEvent | QueuedEvent | DoneEvent | ErrorEvent


class Rpc:
    """One streaming RPC: the route, its request type, and its SSE events by name.

    The server registers a handler for it and the browser builds its stub from it,
    so the URL, the types and the event names exist in one place only.
    """

    def __init__(self, path: str, request: type, events: dict[str, type]) -> None:
        self.path = path
        self.request = request
        self.events = events
        self.event_names = {cls: name for name, cls in events.items()}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            name: msgspec.json.Decoder(cls) for name, cls in events.items()
        }

    def encode_event(self, event: Any) -> tuple[str, str]:
        return self.event_names[type(event)], msgspec.json.encode(event).decode()

    def decode_event(self, name: str, data: str) -> Any:
        decoder = self._decoders.get(name)
        if decoder is None:
            raise ValueError(f"unknown event {name!r}")
        return decoder.decode(data)



CONVERSE = Rpc(
    "/api/converse",
    ConverseRequest,
    {"token": TokenEvent, "queued": QueuedEvent, "done": DoneEvent, "error": ErrorEvent},
)
