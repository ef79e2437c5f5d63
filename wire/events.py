"""What an answer's stream sends, in order: `answer` (its id), then `queued`, `loading`,
`progress`, `thought`, `token` and `tool_call` events as they come, and last exactly one `done` or `error`."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

StopReason = Literal["stop", "length", "cancelled"]


class TokenEvent(Struct):
    text: str


class ThoughtEvent(Struct):
    """A piece of the model's reasoning (its think block), streamed apart from the answer."""

    text: str


class ToolCallEvent(Struct):
    """The model calls a tool: `arguments` is the JSON it wrote. The page runs it (once the user
    allows it) and asks again with the result (wire.types.ToolUse), and the answer goes on."""

    id: str
    name: str
    arguments: str


class QueuedEvent(Struct):
    position: int


class LoadingEvent(Struct):
    """The chat's model is being loaded; the answer follows once it is."""

    model: str


class ProgressEvent(Struct):
    """How far the model has read the prompt before its first token: `processed` of `total`
    tokens, `cached` of them restored from its cache rather than read. Sent a few times a second
    at most, and only while a long prompt is read."""

    processed: int
    total: int
    cached: int


class DoneEvent(Struct):
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    prompt_tokens_evaluated: int = 0
    truncated_turns: int = 0
    model: str = ""  # the model that wrote the answer
    draft_acceptance: float | None = None  # speculative decoding: share of drafted tokens kept (None: no drafts)


class ErrorEvent(Struct):
    type: str
    message: str


class AnswerEvent(Struct):
    """The first event of an answer: its id, by which a reloaded page reads it again
    (`answer_path`) or stops it (`stop_path`)."""

    id: str


class ErrorBody(Struct):
    error: ErrorEvent


Event = (
    TokenEvent | ThoughtEvent | ToolCallEvent | QueuedEvent | LoadingEvent | ProgressEvent | DoneEvent | ErrorEvent
    | AnswerEvent
)


