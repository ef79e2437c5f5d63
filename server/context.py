"""Fit a conversation into the context window by dropping its oldest turns.

The count is the engine's own, of the whole rendered prompt (template, system prompt and all),
so what fits here fits in the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from server.engines.base import Prompt
from wire.types import Message

Render = Callable[[Sequence[Message], str | None], Prompt]


class ContextTooLong(Exception):
    def __init__(self, needed: int, n_ctx: int) -> None:
        super().__init__(
            f"the last message needs {needed} tokens with the answer budget, but the context"
            f" window holds {n_ctx}: shorten the message or lower max_tokens"
        )
        self.needed = needed
        self.n_ctx = n_ctx


def fit(
    messages: Sequence[Message], system: str | None, render: Render, n_ctx: int, answer_budget: int
) -> tuple[Prompt, int]:
    """The prompt to send and how many of the oldest messages were dropped to make it fit.

    The system prompt and the latest (user) message are always kept. Kept history starts at a
    user turn, as chat templates that check roles alternate require. The prompt grows with each
    turn kept, so a binary search over where the kept history starts renders O(log n) prompts.
    """
    starts = [i for i, m in enumerate(messages) if m.user or i == len(messages) - 1]

    def fits(start: int) -> Prompt | None:
        prompt = render(messages[start:], system)
        return prompt if prompt.n_tokens + answer_budget <= n_ctx else None

    whole = fits(0)
    if whole is not None:
        return whole, 0
    lo, hi = 0, len(starts) - 1  # starts[lo] does not fit; find the first that does
    best = fits(starts[hi])
    if best is None:
        raise ContextTooLong(render(messages[-1:], system).n_tokens + answer_budget, n_ctx)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        prompt = fits(starts[mid])
        if prompt is None:
            lo = mid
        else:
            hi, best = mid, prompt
    return best, starts[hi]
