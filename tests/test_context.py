from __future__ import annotations

import pytest

from client.protocol import Message
from server.context import ContextTooLong, fit
from server.prompt import build_prompt, head


def words(text: str) -> int:
    return len(text.split())


def history(n: int) -> list[Message]:
    return [Message(i % 2 == 0, f"message number {i} with some words") for i in range(n)]


def test_everything_fits_unchanged() -> None:
    messages = history(5)
    prompt, dropped = fit(messages, None, words, n_ctx=1000, answer_budget=50)
    assert dropped == 0
    assert prompt == build_prompt(messages)


def test_oldest_turns_go_first_and_the_head_and_last_message_stay() -> None:
    messages = history(41)
    prompt, dropped = fit(messages, "Be brief.", words, n_ctx=200, answer_budget=50)
    assert 0 < dropped < 40
    assert prompt == build_prompt(messages[dropped:], "Be brief.")
    assert prompt.startswith(head("Be brief."))
    assert "message number 40 " in prompt and "message number 0 " not in prompt
    assert words(prompt) + 50 <= 200


def test_a_last_message_that_cannot_fit_is_refused_with_counts() -> None:
    messages = [Message(True, "word " * 500)]
    with pytest.raises(ContextTooLong) as caught:
        fit(messages, None, words, n_ctx=300, answer_budget=50)
    assert caught.value.n_ctx == 300 and caught.value.needed > 500
    assert str(caught.value.needed) in str(caught.value) and "300" in str(caught.value)
