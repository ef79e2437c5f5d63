"""The chat as the browser holds it: immutable values and pure transitions, no DOM.

The app keeps one `Chat` in a signal; every change is a function from the old value to a
new one, so the view re-renders from a single source of truth and tests need no browser.
The wire `Conversation` is derived from it (`request_for`), never stored beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from client.protocol import (
    Conversation,
    ConverseRequest,
    DoneEvent,
    ErrorEvent,
    Message,
    QueuedEvent,
    SamplingParams,
    TokenEvent,
)

# pending: asked, nothing back yet (the view shows "...")
# streaming: tokens arriving; done: finished; error: failed (text holds the reason)
Status = Literal["pending", "streaming", "done", "error"]


@dataclass(frozen=True)
class Turn:
    user: bool
    text: str
    status: Status = "done"
    note: str = ""  # small print under a model answer: queue position, stop reason, speed


@dataclass(frozen=True)
class Chat:
    turns: tuple[Turn, ...] = ()

    @property
    def busy(self) -> bool:
        """An answer is on its way: sending now would interleave two answers."""
        return bool(self.turns) and self.turns[-1].status in ("pending", "streaming")


def submit(chat: Chat, text: str) -> Chat:
    """Add the user's message and an empty model answer; unchanged if blank or busy."""
    if chat.busy or not text.strip():
        return chat
    return Chat(chat.turns + (Turn(user=True, text=text), Turn(user=False, text="", status="pending")))


def _with_last(chat: Chat, **changes: Any) -> Chat:
    last = chat.turns[-1]
    return Chat(chat.turns[:-1] + (replace(last, **changes),))


def _answering(chat: Chat) -> bool:
    return chat.busy and not chat.turns[-1].user


def append_token(chat: Chat, text: str) -> Chat:
    if not _answering(chat):
        return chat
    last = chat.turns[-1]
    return _with_last(chat, text=last.text + text, status="streaming", note="")


def queued(chat: Chat, position: int) -> Chat:
    if not _answering(chat):
        return chat
    return _with_last(chat, note=f"queued, position {position}")


def finish(chat: Chat, done: DoneEvent) -> Chat:
    if not _answering(chat):
        return chat
    return _with_last(chat, status="done", note=describe_done(done))


def fail(chat: Chat, message: str) -> Chat:
    """Show an error as the model's answer, keeping any text that already arrived."""
    if not _answering(chat):
        return chat
    last = chat.turns[-1]
    text = f"{last.text}\n\n{message}" if last.text else message
    return _with_last(chat, text=text, status="error", note="")


def apply_event(chat: Chat, event: object) -> Chat:
    """Fold one event from the converse stream into the chat."""
    if isinstance(event, TokenEvent):
        return append_token(chat, event.text)
    if isinstance(event, QueuedEvent):
        return queued(chat, event.position)
    if isinstance(event, DoneEvent):
        return finish(chat, event)
    if isinstance(event, ErrorEvent):
        return fail(chat, f"Error ({event.type}): {event.message}")
    return chat


def describe_done(done: DoneEvent) -> str:
    parts = []
    if done.stop_reason == "length":
        parts.append("cut at the length limit")
    elif done.stop_reason == "cancelled":
        parts.append("cancelled")
    parts.append(f"{done.completion_tokens} tokens")
    if done.tokens_per_s:
        parts.append(f"{done.tokens_per_s:.1f} tok/s")
    if done.ttft_s is not None:
        parts.append(f"first token {done.ttft_s:.2f} s")
    return " · ".join(parts)


def request_for(chat: Chat, params: SamplingParams | None = None) -> ConverseRequest:
    """The wire request for the pending answer: the history without failed or empty answers."""
    messages = [Message(user=t.user, text=t.text) for t in chat.turns if t.user or (t.status == "done" and t.text)]
    return ConverseRequest(
        conversation=Conversation(messages=messages),
        params=params if params is not None else SamplingParams(),
    )
