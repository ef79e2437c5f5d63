"""Fit a conversation into the context window by dropping its oldest turns, a step at a time.

The count is the engine's own, of the whole rendered prompt (template, system prompt and all),
so what fits here fits in the engine.

Why steps: the engine reuses a cached prompt only up to the first token that differs. Dropping
just enough turns for each answer would move the prompt's start on every turn past the window,
so each of them would read the whole history again. Instead, a chat that outgrows the room drops
its oldest turns until what is kept fills at most 3/4 of it; the turns after that add at the
end, keep the same start, and so the cache, until the room is full again. The server keeps
nothing per chat, so every request replays the chat's own history of cuts: the turn at which it
first overflowed, where that drop cut it, the turn at which the rest overflowed, and so on.
Only what the earlier requests held enters the replay, so a new turn never moves an older cut.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from server.engines.base import Prompt
from server.token_counts import Count, Render
from wire.types import Message

# A drop frees at least a quarter of the room: the turns that follow fill it again before the
# next drop (and its one full re-read of the kept history).
KEEP_AFTER_DROP = 3 / 4


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
    render: Render,
    n_ctx: int,
    answer_budget: int,
    count: Count | None = None,
) -> tuple[Prompt, int]:
    """The prompt to send and how many of the oldest messages were dropped to make it fit.

    The system prompt and the latest (user) message are always kept. Kept history starts at a
    user turn, as chat templates that check roles alternate require. `count`: the tokens of a
    few turns as `render` counts them, maybe remembered from the chat's earlier requests (each
    turn is counted apart, so a long history costs its own tokens once more, never once per
    turn); the whole prompt is rendered from the cut only.
    """
    room = n_ctx - answer_budget

    def fitting(start: int) -> Prompt | None:
        prompt = render(messages[start:], system)
        return prompt if prompt.n_tokens <= room else None

    # where each turn starts: at a user message (the first turn also holds anything before one)
    starts = [0] + [i for i, m in enumerate(messages) if i and (m.user or i == len(messages) - 1)]
    cut = 0
    if len(starts) > 1:
        costs = turn_costs(messages, starts, system, count or (lambda ms, s: render(ms, s).n_tokens))
        cut = stepped_cut(costs, room)
    # Turns counted apart may miss a token where they meet: the engine's count of the whole
    # prompt decides, and the cut moves on until it fits.
    prompt = fitting(starts[cut])
    if prompt is not None:
        return prompt, starts[cut]
    lo, hi = cut, len(starts) - 1  # starts[lo] does not fit; find the first that does
    best = fitting(starts[hi]) if hi > lo else None
    if best is None:
        raise ContextTooLong(render(messages[-1:], system).n_tokens + answer_budget, n_ctx)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        prompt = fitting(starts[mid])
        if prompt is None:
            lo = mid
        else:
            hi, best = mid, prompt
    return best, starts[hi]


@dataclass(frozen=True)
class TurnCosts:
    """What a prompt of some turns costs: `fixed` (template and system prompt) plus each whole
    turn's `whole` tokens, and for the last turn only its `asked` tokens (its user message and
    anything before its answer), as it was when the answer was asked for."""

    whole: list[int]
    asked: list[int]
    fixed: int


def turn_costs(messages: Sequence[Message], starts: Sequence[int], system: str | None, count: Count) -> TurnCosts:
    """Each turn's tokens, rendered alone without the system prompt, less what every render adds
    (found as the tokens two turns share when rendered together), and that shared part with the
    system prompt's tokens."""
    ends = [*starts[1:], len(messages)]

    def tokens(first: int, last: int, with_system: str | None = None) -> int:
        return count(messages[first:last], with_system)

    whole = [tokens(a, b) for a, b in zip(starts, ends, strict=True)]
    # a turn's question is its first message (a turn starts at each user message)
    asked = [tokens(a, a + 1) if messages[a].user and b > a + 1 else w
             for a, b, w in zip(starts, ends, whole, strict=True)]
    pair = tokens(starts[-2], len(messages))
    shared = whole[-2] + whole[-1] - pair
    fixed = shared + (tokens(starts[-2], len(messages), system) - pair if system is not None else 0)
    whole = [max(w - shared, 0) for w in whole]
    asked = [min(max(q - shared, 0), w) for q, w in zip(asked, whole, strict=True)]
    return TurnCosts(whole, asked, max(fixed, 0))


def stepped_cut(costs: TurnCosts, room: int) -> int:
    """The first turn to keep so that the last turn's prompt fits in `room`, replaying the chat's
    cuts: from the current cut, find the first turn whose prompt overflowed the room, then cut
    from there the oldest turns until that prompt fits in KEEP_AFTER_DROP of the room (keeping at
    least that turn's question); repeat until the last turn's prompt fits, or is alone."""
    before = list(accumulate(costs.whole, initial=0))  # before[j]: turns 0..j-1, whole
    asked = [b + q for b, q in zip(before, costs.asked, strict=False)]  # turn j's prompt, from turn 0
    last = len(costs.whole) - 1
    free, after_drop = room - costs.fixed, int(room * KEEP_AFTER_DROP) - costs.fixed
    cut = 0
    while cut < last and asked[last] - before[cut] > free:
        over = bisect_right(asked, free + before[cut], lo=cut)  # the first turn that overflowed
        keep = bisect_left(before, asked[over] - after_drop, lo=cut + 1)
        cut = max(cut + 1, min(keep, over))
    return cut
