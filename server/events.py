"""What an answer reports on its way up, before a front door shapes it for its clients.

The scheduler passes the engine's pieces on (`Text` and `Thought` cleaned of stop markers and
think tags), says where a request waits (`Queued`) and how the answer ended (`Done` or
`Failed`); the chat service adds `Loading` while the answer's model loads. Our API turns them
into `wire.events` (server/api.py), the OpenAI front door into its chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.engines.base import Progress, Text, Thought, ToolCall
from wire.events import StopReason


@dataclass(frozen=True)
class Queued:
    position: int  # 1: next to run


@dataclass(frozen=True)
class Loading:
    model: str


@dataclass(frozen=True)
class Done:
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    prompt_tokens_evaluated: int = 0
    truncated_turns: int = 0
    model: str = ""  # the model that wrote the answer
    draft_acceptance: float | None = None  # speculative decoding: share of drafted tokens kept (None: no drafts)
    stop_sequence: str | None = None  # the stop string (a client's or the prompt's own marker) that ended it
    key_name: str = ""  # the name of the key that asked ("": none)
    queue_s: float = 0.0  # from admission to a slot


@dataclass(frozen=True)
class Failed:
    type: str
    message: str


Event = Text | Thought | ToolCall | Progress | Queued | Loading | Done | Failed

__all__ = ["Done", "Event", "Failed", "Loading", "Progress", "Queued", "Text", "Thought", "ToolCall"]
