from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.context import KEEP_AFTER_DROP, ContextTooLong, fit
from server.engines.base import Prompt
from server.prompt import STOP_MARKERS, build_prompt, head
from server.token_counts import TokenCounts
from wire.types import Message


def words(text: str) -> int:
    return len(text.split())


class CountingRender:
    """The seed template, counted in words; records how many prompts were rendered."""

    def __init__(self) -> None:
        self.calls = 0
        self.sizes: list[int] = []

    def __call__(self, messages: Sequence[Message], system: str | None) -> Prompt:
        self.calls += 1
        text = build_prompt(messages, system)
        self.sizes.append(words(text))
        return Prompt(words(text), STOP_MARKERS, text)


def history(n: int) -> list[Message]:
    return [Message(i % 2 == 0, f"message number {i} with some words") for i in range(n)]


def test_everything_fits_unchanged() -> None:
    messages = history(5)
    prompt, dropped = fit(messages, None, CountingRender(), n_ctx=1000, answer_budget=50)
    assert dropped == 0
    assert prompt.payload == build_prompt(messages)


def test_oldest_turns_go_first_and_the_head_and_last_message_stay() -> None:
    messages = history(41)
    prompt, dropped = fit(messages, "Be brief.", CountingRender(), n_ctx=200, answer_budget=50)
    assert 0 < dropped < 40
    text = str(prompt.payload)
    assert text == build_prompt(messages[dropped:], "Be brief.")
    assert text.startswith(head("Be brief."))
    assert "message number 40 " in text and "message number 0 " not in text
    assert prompt.n_tokens + 50 <= 200
    # dropped in steps, yet no more than that: one more (user-first) pair would not fit in the
    # 3/4 of the room that a drop leaves
    assert words(build_prompt(messages[dropped - 2 :], "Be brief.")) > (200 - 50) * KEEP_AFTER_DROP


def test_kept_history_starts_with_a_user_turn() -> None:
    for n_ctx in range(120, 400, 7):
        _, dropped = fit(history(41), None, CountingRender(), n_ctx=n_ctx, answer_budget=20)
        assert history(41)[dropped].user


def test_a_long_history_is_never_rendered_whole() -> None:
    render = CountingRender()
    fit(history(2001), None, render, n_ctx=300, answer_budget=50)
    # each turn alone (and its question alone), then the prompt from the cut: the work grows with
    # the history, not with the history times its turns
    assert max(render.sizes) <= 300
    assert render.calls <= 2001 + 10


def test_the_next_turn_counts_only_its_new_turns() -> None:
    counts, messages = TokenCounts(), history(201)
    render = CountingRender()
    _, cut = fit(messages, None, render, n_ctx=300, answer_budget=50, count=partial(counts.count, render))
    assert render.calls > 200
    render = CountingRender()
    messages = [*messages, Message(False, "an answer"), Message(True, "a question")]
    _, next_cut = fit(messages, None, render, n_ctx=300, answer_budget=50, count=partial(counts.count, render))
    assert render.calls <= 6 and next_cut == cut  # the answered turn, the new one, the last pair, the prompt


def test_a_last_message_that_cannot_fit_is_refused_with_counts() -> None:
    messages = [Message(True, "word " * 500)]
    with pytest.raises(ContextTooLong) as caught:
        fit(messages, None, CountingRender(), n_ctx=300, answer_budget=50)
    assert caught.value.n_ctx == 300 and caught.value.needed > 500
    assert str(caught.value.needed) in str(caught.value) and "300" in str(caught.value)


# -- stepped dropping, for any chat and window ----------------------------------------------------

# A chat: how many words each message has and whether the user wrote it; the last is the user's.
chats = st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=40).map(
    lambda ms: [*ms, (True, 5)]
)
systems = st.sampled_from([None, "", "Be brief.", "You answer in rhyme, always, and never in prose at all."])


def chat_of(shape: Sequence[tuple[bool, int]]) -> list[Message]:
    return [Message(user, " ".join(f"w{i}" for _ in range(n))) for i, (user, n) in enumerate(shape)]


def answered(messages: list[Message], answer: int, question: int) -> list[Message]:
    """The chat one turn later: an answer to its last message, and a new question."""
    return [*messages, *chat_of([(False, answer), (True, question)])[:2]]


@settings(max_examples=300, deadline=None)
@given(chats, systems, st.integers(40, 600), st.integers(0, 60))
def test_what_is_kept_fits_and_holds_the_last_message(
    shape: list[tuple[bool, int]], system: str | None, n_ctx: int, budget: int
) -> None:
    messages = chat_of(shape)
    render = CountingRender()
    try:
        prompt, dropped = fit(messages, system, render, n_ctx, budget)
    except ContextTooLong as exc:
        assert words(build_prompt(messages[-1:], system)) + budget > n_ctx
        assert exc.needed == words(build_prompt(messages[-1:], system)) + budget
        return
    assert prompt.n_tokens + budget <= n_ctx
    assert prompt.payload == build_prompt(messages[dropped:], system)
    assert 0 <= dropped < len(messages)
    assert dropped == 0 or messages[dropped].user
    assert render.calls <= 2 * len(messages) + 6


@settings(max_examples=300, deadline=None)
@given(chats, systems, st.integers(40, 600), st.integers(0, 60),
       st.lists(st.tuples(st.integers(1, 40), st.integers(1, 30)), min_size=1, max_size=12))
def test_later_turns_keep_the_cut_until_the_room_is_full_again(
    shape: list[tuple[bool, int]], system: str | None, n_ctx: int, budget: int, turns: list[tuple[int, int]]
) -> None:
    messages = chat_of(shape)
    try:
        _, cut = fit(messages, system, CountingRender(), n_ctx, budget)
        for answer, question in turns:
            messages = answered(messages, answer, question)
            _, next_cut = fit(messages, system, CountingRender(), n_ctx, budget)
            if words(build_prompt(messages[cut:], system)) + budget <= n_ctx:
                assert next_cut == cut  # the cut stays while what it keeps fits
            else:
                assert next_cut > cut  # only an overflow moves it, and only forward
                # by a step: a quarter of the room freed, not just enough for this turn
                kept = words(build_prompt(messages[next_cut:], system))
                question_alone = words(build_prompt(messages[-1:], system))
                assert kept <= max((n_ctx - budget) * KEEP_AFTER_DROP, question_alone + answer + 10)
            cut = next_cut
    except ContextTooLong:
        pass


def test_a_template_that_counts_more_together_still_fits() -> None:
    """Turns counted apart may cost less than together: the engine's count of the whole decides."""

    class Clumping(CountingRender):
        def __call__(self, messages: Sequence[Message], system: str | None) -> Prompt:
            prompt = super().__call__(messages, system)
            return Prompt(prompt.n_tokens + 3 * len(messages), prompt.stops, prompt.payload)

    for n_ctx in range(100, 400, 13):
        prompt, dropped = fit(history(41), "Be brief.", Clumping(), n_ctx=n_ctx, answer_budget=20)
        assert prompt.n_tokens + 20 <= n_ctx and history(41)[dropped].user
