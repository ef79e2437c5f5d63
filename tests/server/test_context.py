from __future__ import annotations

from collections.abc import Sequence

import pytest

from server.context import ContextTooLong, fit
from server.engines.base import Prompt
from server.prompt import STOP_MARKERS, build_prompt, head
from wire.types import Message


def words(text: str) -> int:
    return len(text.split())


class CountingRender:
    """The seed template, counted in words; records how many prompts were rendered."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: Sequence[Message], system: str | None) -> Prompt:
        self.calls += 1
        text = build_prompt(messages, system)
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
    # as many turns as fit are kept: one more (user-first) pair would not fit
    assert words(build_prompt(messages[dropped - 2 :], "Be brief.")) + 50 > 200


def test_kept_history_starts_with_a_user_turn() -> None:
    for n_ctx in range(120, 400, 7):
        _, dropped = fit(history(41), None, CountingRender(), n_ctx=n_ctx, answer_budget=20)
        assert history(41)[dropped].user


def test_a_long_history_is_fitted_with_few_renders() -> None:
    render = CountingRender()
    fit(history(2001), None, render, n_ctx=300, answer_budget=50)
    assert render.calls <= 14  # a binary search over 1001 user turns, not one render per turn


def test_a_last_message_that_cannot_fit_is_refused_with_counts() -> None:
    messages = [Message(True, "word " * 500)]
    with pytest.raises(ContextTooLong) as caught:
        fit(messages, None, CountingRender(), n_ctx=300, answer_budget=50)
    assert caught.value.n_ctx == 300 and caught.value.needed > 500
    assert str(caught.value.needed) in str(caught.value) and "300" in str(caught.value)
