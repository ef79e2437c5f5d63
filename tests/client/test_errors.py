"""Errors in plain words (client.errors), when to look for the server again (client.reconnect),
and Continue's transitions (client.state): pure Python, on CPython."""

from __future__ import annotations

from itertools import islice

import pytest

from client.errors import CONNECTION_LOST, CUT_OFF, TOO_LONG, plain
from client.reconnect import backoff
from client.state import (
    Chat,
    Turn,
    apply_event,
    can_continue,
    continue_answer,
    fail,
    replay,
    request_for,
    stop,
)
from wire.events import DoneEvent, ErrorEvent, TokenEvent

VALIDATION = "Expected `str` of length <= 100000 - at `$.conversation.messages[0].text`"
CONTEXT = (
    "the last message needs 5000 tokens with the answer budget, but the context window holds 4096:"
    " shorten the message or lower max_tokens"
)


@pytest.mark.parametrize(
    ("type", "message", "says"),
    [
        ("network", "Cannot reach the server: TypeError: network error", CONNECTION_LOST),
        ("disconnected", "The answer stream ended before it was complete.", CONNECTION_LOST),
        ("invalid_request", VALIDATION, TOO_LONG),
        ("context_length_exceeded", CONTEXT, "needs 5,000 tokens with the answer, the model holds 4,096"),
        ("queue_full", "the queue is full (32 waiting); retry shortly", "busy with other answers"),
        ("model_load_failed", "model x.gguf cannot be loaded: bad magic", "could not be loaded"),
        ("model_not_found", "no model named 'x.gguf'", "Pick another model"),
        ("invalid_request", "Expected `int` >= 1 - at `$.params.max_tokens`", "Open Settings"),
        ("http_502", "HTTP 502: <html>Bad gateway</html>", "The server hit a problem"),
        ("invalid_request", "the model's chat template refused the chat: roles must alternate",
         "The model's chat template refused the chat: roles must alternate."),
    ],
)
def test_each_error_is_a_plain_sentence(type: str, message: str, says: str) -> None:
    said = plain(ErrorEvent(type=type, message=message))
    assert says in said
    for leak in ("TypeError", "$.", "`str`", "HTTP 502", "<html>"):
        assert leak not in said
    assert said[0].isupper() and said.endswith(".")


def test_the_server_is_looked_for_ever_less_often_up_to_half_a_minute() -> None:
    assert list(islice(backoff(), 9)) == [1, 2, 4, 8, 16, 30, 30, 30, 30]


def answering(text: str = "") -> Chat:
    return Chat(id="c", turns=(Turn(True, "Count"), Turn(False, text, status="streaming" if text else "pending")))


def test_a_dropped_connection_keeps_the_answer_with_continue() -> None:
    lost = ErrorEvent(type="network", message="Connection lost: TypeError: network error")
    cut = apply_event(answering("1, 2,"), lost).turns[-1]
    assert (cut.status, cut.text, cut.note, cut.unfinished) == ("stopped", "1, 2,", CUT_OFF, True)
    nothing = apply_event(answering(), lost).turns[-1]
    assert (nothing.status, nothing.text, nothing.unfinished) == ("error", CONNECTION_LOST, False)


def test_continue_follows_a_length_stop_or_a_cut_and_nothing_else() -> None:
    length = apply_event(answering("a b"), DoneEvent("length", 3, 2, 0.1, 1.0))
    finished = apply_event(answering("a b"), DoneEvent("stop", 3, 2, 0.1, 1.0))
    assert can_continue(length) and not can_continue(finished)
    assert not can_continue(stop(answering("a b")))  # the user's own Stop
    assert not can_continue(answering("a b"))  # still coming
    assert continue_answer(finished) is finished

    going = continue_answer(length, now=5.0)
    last = going.turns[-1]
    assert going.busy and (last.text, last.kept, last.status, last.unfinished) == ("a b", "a b", "pending", False)
    request = request_for(going)
    assert request.continue_ and [(m.user, m.text) for m in request.conversation.messages] == [
        (True, "Count"), (False, "a b")]
    assert not request_for(length).continue_

    more = apply_event(going, TokenEvent(" c"))
    assert more.turns[-1].text == "a b c"
    assert replay(more).turns[-1].text == "a b"  # read again after a reload: from where it went on
    done = apply_event(more, DoneEvent("stop", 3, 2, 0.1, 1.0)).turns[-1]
    assert (done.text, done.kept, done.status) == ("a b c", "", "done")


def test_a_continuation_that_fails_keeps_the_answer_and_continue() -> None:
    going = continue_answer(apply_event(answering("a b"), DoneEvent("length", 3, 2, 0.1, 1.0)))
    failed = fail(going, "The server is busy with other answers. Try again in a moment.").turns[-1]
    assert (failed.status, failed.text, failed.unfinished) == ("stopped", "a b", True)
    assert "busy" in failed.note


def test_a_markdown_export_imports_as_the_same_chat() -> None:
    from client import library as lib
    from client.state import Call, Round

    call = Call("c1", "get_weather", '{"city": "Paris"}', state="done", result="Sunny\n21 °C")
    failed = Call("c2", "python", "print(1/0)", state="done", result="ZeroDivisionError", is_error=True)
    chat = Chat(id="a", title="Weather", system="Be brief.\nVery.", preset="Precise", turns=(
        Turn(True, "How is it in Paris?\n\nAnd > quotes?"),
        Turn(False, "It is sunny.", model="m.gguf", thoughts="Look it up.\n\nThen say.",
             rounds=(Round("Let me look.", (call,)), Round("", (failed,)))),
        Turn(True, "Thanks"),
        Turn(False, "You're welcome."),
    ))
    back = lib.import_many(lib.export_markdown(chat), lambda: "new", 7.0).chats[0]
    assert (back.id, back.title, back.system, back.preset, back.updated) == ("new", "Weather", "Be brief.\nVery.",
                                                                             "Precise", 7.0)
    assert [(t.user, t.text, t.model, t.thoughts) for t in back.turns] == [
        (t.user, t.text, t.model, t.thoughts) for t in chat.turns]
    rounds = back.turns[1].rounds
    # Rounds with no text between them read as one: Markdown shows them alike.
    assert [(r.text, [(c.name, c.arguments, c.result, c.is_error) for c in r.calls]) for r in rounds] == [
        ("Let me look.", [("get_weather", '{"city": "Paris"}', "Sunny\n21 °C", False),
                          ("python", "print(1/0)", "ZeroDivisionError", True)]),
    ]
    assert lib.duplicates(lib.Library(chats=(chat,)), lib.Library(chats=(back,))) == {"new": "a"}
    plain = lib.import_many(lib.export_markdown(Chat(id="b", turns=(Turn(True, "Hi"), Turn(False, "Hello")))),
                            lambda: "n", 0.0).chats[0]
    assert plain.system is None and plain.preset == "" and [t.text for t in plain.turns] == ["Hi", "Hello"]
