"""The browser's chat state: pure transitions, checked on CPython."""

from __future__ import annotations

from client.protocol import DoneEvent, ErrorEvent, QueuedEvent, TokenEvent
from client.state import Chat, Turn, append_token, apply_event, fail, request_for, submit

DONE = DoneEvent(stop_reason="stop", prompt_tokens=12, completion_tokens=3, ttft_s=0.25, tokens_per_s=40.0)


def asked(text: str = "hi") -> Chat:
    return submit(Chat(), text)


def test_submit_adds_user_message_and_pending_answer() -> None:
    chat = asked("What is the capital of France?")
    assert chat.turns == (
        Turn(user=True, text="What is the capital of France?"),
        Turn(user=False, text="", status="pending"),
    )
    assert chat.busy


def test_submit_ignores_blank_text_and_sending_while_busy() -> None:
    assert submit(Chat(), "  \n ") == Chat()
    chat = asked()
    assert submit(chat, "second question") is chat


def test_tokens_stream_into_the_answer_then_done_frees_the_chat() -> None:
    chat = asked()
    for event in (QueuedEvent(position=2), TokenEvent("Par"), TokenEvent("is\n"), TokenEvent("!")):
        chat = apply_event(chat, event)
    assert chat.turns[-1].text == "Paris\n!"
    assert chat.turns[-1].status == "streaming"
    assert chat.busy
    chat = apply_event(chat, DONE)
    assert chat.turns[-1].status == "done"
    assert not chat.busy
    assert "3 tokens" in chat.turns[-1].note and "40.0 tok/s" in chat.turns[-1].note


def test_queued_shows_position_until_first_token() -> None:
    chat = apply_event(asked(), QueuedEvent(position=3))
    assert chat.turns[-1].note == "queued, position 3"
    assert chat.turns[-1].status == "pending"
    assert apply_event(chat, TokenEvent("x")).turns[-1].note == ""


def test_length_stop_is_mentioned() -> None:
    done = DoneEvent(stop_reason="length", prompt_tokens=1, completion_tokens=8, ttft_s=None, tokens_per_s=None)
    chat = apply_event(apply_event(asked(), TokenEvent("a")), done)
    assert chat.turns[-1].note.startswith("cut at the length limit")


def test_error_event_becomes_a_flagged_model_message_keeping_partial_text() -> None:
    chat = apply_event(asked(), TokenEvent("Half an ans"))
    chat = apply_event(chat, ErrorEvent(type="engine", message="model crashed"))
    last = chat.turns[-1]
    assert not last.user and last.status == "error"
    assert last.text.startswith("Half an ans") and "model crashed" in last.text
    assert not chat.busy
    empty = fail(asked(), "Cannot reach the server")
    assert empty.turns[-1].text == "Cannot reach the server"


def test_events_after_the_answer_finished_change_nothing() -> None:
    chat = apply_event(apply_event(asked(), TokenEvent("ok")), DONE)
    assert apply_event(chat, TokenEvent("late")) == chat
    assert append_token(Chat(), "x") == Chat()


def test_request_holds_the_history_without_failed_or_pending_answers() -> None:
    chat = apply_event(apply_event(asked("one"), TokenEvent("1")), DONE)
    chat = apply_event(submit(chat, "two"), ErrorEvent(type="x", message="boom"))
    chat = submit(chat, "three")
    messages = request_for(chat).conversation.messages
    assert [(m.user, m.text) for m in messages] == [(True, "one"), (False, "1"), (True, "two"), (True, "three")]
