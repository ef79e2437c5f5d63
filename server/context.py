"""Fit a conversation into the context window by dropping its oldest turns."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from client.protocol import Message
from server.prompt import ASSISTANT, head, turn


class ContextTooLong(Exception):
    def __init__(self, needed: int, n_ctx: int) -> None:
        super().__init__(
            f"the last message needs {needed} tokens with the answer budget, but the context"
            f" window holds {n_ctx}: shorten the message or lower max_tokens"
        )
        self.needed = needed
        self.n_ctx = n_ctx


def fit(
    messages: Sequence[Message],
    system: str | None,
    count: Callable[[str], int],
    n_ctx: int,
    answer_budget: int,
) -> tuple[str, int]:
    """The prompt to send and how many of the oldest messages were dropped to make it fit.

    The preamble and the latest (user) message are always kept; older turns go first.
    """
    fixed = head(system)
    needed = count(fixed) + count(turn(messages[-1])) + count(ASSISTANT) + answer_budget + 1
    if needed > n_ctx:
        raise ContextTooLong(needed, n_ctx)
    kept: list[str] = []
    for message in reversed(messages[:-1]):
        text = turn(message)
        cost = count(text) + 1  # +1: tokens may merge differently across a turn boundary
        if needed + cost > n_ctx:
            break
        needed += cost
        kept.append(text)
    dropped = len(messages) - 1 - len(kept)
    return fixed + "".join(reversed(kept)) + turn(messages[-1]) + ASSISTANT, dropped
