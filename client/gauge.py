"""The context gauge: how much of the model's context the open chat used, by the server's own count,
and which of its turns the server dropped to fit. Pure functions, no DOM.

The numbers come from the last finished answer's DoneEvent (prompt + completion tokens, kept on the
answer's Turn), out of the `n_ctx` that GET /api/models gives for the model that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from client.state import Chat, Turn
from wire.types import ModelList

DROPPED_LABEL = "Not sent: dropped to fit the context"


@dataclass(frozen=True)
class Gauge:
    used: int
    size: int  # 0: the context size is not known

    @property
    def text(self) -> str:
        return f"{self.used:,} / {self.size:,} tokens" if self.size else f"{self.used:,} tokens"

    @property
    def fraction(self) -> float:
        return min(self.used / self.size, 1.0) if self.size else 0.0


def _last_counted(chat: Chat) -> tuple[int, Turn] | None:
    """The newest answer that carries the server's token count, with its position."""
    for index in range(len(chat.turns) - 1, -1, -1):
        turn = chat.turns[index]
        if not turn.user and turn.tokens:
            return index, turn
    return None


def context_size(chat: Chat, models: ModelList | None, model: str = "") -> int:
    """The n_ctx of `model` (default: the chat's own model, or the server's default); 0 if unknown."""
    if models is None:
        return 0
    name = model or chat.model or models.default
    return next((m.n_ctx for m in models.models if m.name == name), 0)


def gauge_of(chat: Chat, models: ModelList | None) -> Gauge | None:
    """The gauge for `chat`; None before any answer was counted."""
    counted = _last_counted(chat)
    if counted is None:
        return None
    _, turn = counted
    return Gauge(turn.tokens, context_size(chat, models, turn.model))


def sent_positions(turns: tuple[Turn, ...]) -> list[int]:
    """Which of `turns` go to the model as messages (the rule of client.state.request_for)."""
    return [i for i, t in enumerate(turns) if t.user or (t.status in ("done", "stopped") and t.text)]


def dropped(chat: Chat) -> frozenset[int]:
    """Positions of the turns the server left out of the last counted answer's prompt (its oldest messages)."""
    counted = _last_counted(chat)
    if counted is None or not counted[1].truncated_turns:
        return frozenset()
    index, turn = counted
    return frozenset(sent_positions(chat.turns[:index])[: turn.truncated_turns])
