"""The browser's chat state: pure transitions, checked on CPython."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest
from msgspec.structs import replace

from client import library as lib
from client import settings, storage
from client.attachments import Attachment, compose
from client.errors import NOT_OURS
from client.state import (
    INTERRUPTED,
    Chat,
    Turn,
    append_token,
    apply_event,
    configure,
    edit,
    fail,
    regenerate,
    replay,
    request_for,
    restore,
    resumable,
    stop,
    stopped_stats,
    submit,
    switch_version,
    title_of,
    versions_at,
)
from client.storage import diff
from tests.fakes import FakeStore
from tests.harness import run_async
from wire.events import AnswerEvent, DoneEvent, ErrorEvent, Event, QueuedEvent, TokenEvent
from wire.types import SYSTEM_MAX, SamplingParams

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
    assert chat.turns[-1].note == "Queued: position 3"
    assert chat.turns[-1].status == "pending"
    assert apply_event(chat, TokenEvent("x")).turns[-1].note == ""


def test_length_stop_is_mentioned() -> None:
    done = DoneEvent(stop_reason="length", prompt_tokens=1, completion_tokens=8, ttft_s=None, tokens_per_s=None)
    chat = apply_event(apply_event(asked(), TokenEvent("a")), done)
    assert chat.turns[-1].note.endswith("hit the max tokens limit")


def test_error_event_becomes_a_flagged_model_message_keeping_partial_text() -> None:
    chat = apply_event(asked(), TokenEvent("Half an ans"))
    chat = apply_event(chat, ErrorEvent(type="engine", message="model crashed"))
    last = chat.turns[-1]
    assert not last.user and last.status == "error"
    assert last.text.startswith("Half an ans") and "Model crashed." in last.text
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


# Stop, regenerate, edit, reload.


def answered(*pairs: str) -> Chat:
    chat = Chat(id="c")
    for text in pairs:
        chat = apply_event(apply_event(submit(chat, text, now=1.0), TokenEvent(f"re: {text}")), DONE)
    return chat


def test_stop_keeps_the_partial_answer_as_history() -> None:
    chat = stop(apply_event(asked("q"), TokenEvent("Half")))
    assert chat.turns[-1] == Turn(user=False, text="Half", status="stopped", note="Stopped")
    assert not chat.busy
    assert [m.text for m in request_for(submit(chat, "next")).conversation.messages] == ["q", "Half", "next"]
    assert stop(chat) is chat  # nothing streaming: nothing to stop


def texts(chat: Chat) -> list[str]:
    return [t.text for t in chat.turns]


def answer(chat: Chat, text: str) -> Chat:
    return apply_event(apply_event(chat, TokenEvent(text)), DONE)


def test_regenerate_keeps_the_old_answer_as_a_version() -> None:
    chat = answered("one", "two")
    again = regenerate(chat, now=5.0)
    assert texts(again) == ["one", "re: one", "two", ""]
    assert again.turns[-1].status == "pending" and again.updated == 5.0
    assert versions_at(again, 3) == (2, 2) and versions_at(again, 1) is None
    assert regenerate(again) is again  # busy
    assert switch_version(again, 3, -1) is again  # no switching while an answer streams
    assert regenerate(Chat()) == Chat()
    third = regenerate(answer(again, "second try"))
    assert versions_at(third, 3) == (3, 3)
    done = answer(third, "third try")
    first = switch_version(switch_version(done, 3, -1), 3, -1)
    assert texts(first) == ["one", "re: one", "two", "re: two"] and versions_at(first, 3) == (1, 3)
    assert switch_version(first, 3, -1) is first  # at the first version already
    assert texts(switch_version(first, 3, 1))[-1] == "second try"
    assert texts(switch_version(switch_version(first, 3, 1), 3, 1))[-1] == "third try"
    assert switch_version(done, 3, 1) is done and switch_version(done, 2, -1) is done


def test_regenerating_a_failed_answer_replaces_it() -> None:
    failed = fail(asked("q"), "Error (network): down")
    again = regenerate(failed)
    assert texts(again) == ["q", ""] and again.forks == ()


def test_edit_forks_keeping_the_old_message_and_everything_after_it() -> None:
    chat = answered("one", "two")
    edited = edit(chat, 0, "uno")
    assert [(t.user, t.text, t.status) for t in edited.turns] == [(True, "uno", "done"), (False, "", "pending")]
    assert versions_at(edited, 0) == (2, 2)
    assert edit(chat, 1, "not a user message") is chat
    assert edit(chat, 9, "out of range") is chat
    assert edit(chat, 0, "   ") is chat
    assert edit(edited, 0, "busy") is edited
    edited = answer(edited, "re: uno")
    old = switch_version(edited, 0, -1)
    assert texts(old) == texts(chat) and versions_at(old, 0) == (1, 2)
    assert texts(switch_version(old, 0, 1)) == ["uno", "re: uno"]


def test_versions_nest_and_each_branch_keeps_its_own() -> None:
    chat = answered("one", "two")
    regen = answer(regenerate(chat), "two again")  # versions at turn 3
    forked = answer(edit(regen, 0, "uno"), "re: uno")  # versions at turn 0, holding the ones at turn 3
    assert versions_at(forked, 3) is None
    back = switch_version(forked, 0, -1)
    assert texts(back) == ["one", "re: one", "two", "two again"] and versions_at(back, 3) == (2, 2)
    older = switch_version(back, 3, -1)
    assert texts(older)[-1] == "re: two"
    there = switch_version(older, 0, 1)
    assert texts(there) == ["uno", "re: uno"] and versions_at(there, 3) is None
    again = switch_version(there, 0, -1)
    assert texts(again)[-1] == "re: two" and versions_at(again, 3) == (1, 2)  # as it was left


def test_the_request_is_the_visible_branch() -> None:
    chat = answer(regenerate(answered("one", "two")), "two again")
    chat = switch_version(chat, 3, -1)
    sent = [m.text for m in request_for(submit(chat, "three")).conversation.messages]
    assert sent == ["one", "re: one", "two", "re: two", "three"]
    forked = answer(edit(answered("one", "two"), 2, "deux"), "re: deux")
    sent = [m.text for m in request_for(submit(forked, "three")).conversation.messages]
    assert sent == ["one", "re: one", "deux", "re: deux", "three"]


def test_versions_are_saved_exported_and_imported() -> None:
    chat = answer(edit(answer(regenerate(answered("one", "two")), "two again"), 0, "uno"), "re: uno")
    back = lib.from_records(lib.records(library_of(chat, open_id="c")))
    assert lib.find(back, "c") == chat
    imported = lib.import_json(lib.export_json(chat), "c", now=chat.updated)
    assert imported == msgspec.structs.replace(chat, title=title_of(chat))
    older = switch_version(switch_version(imported, 0, -1), 3, -1)
    assert texts(older) == ["one", "re: one", "two", "re: two"]


def test_an_old_export_without_versions_imports_and_broken_versions_are_dropped() -> None:
    turns = '[{"user": true, "text": "q"}, {"user": false, "text": "a"}]'
    old = '{"format": "snake_llama.chat.v1", "title": "Old", "turns": ' + turns + "}"
    chat = lib.import_json(old, "x", 1.0)
    assert texts(chat) == ["q", "a"] and chat.forks == () and chat.title == "Old"
    bad = msgspec.json.decode(lib.export_json(regenerate(answered("one"))))
    bad["forks"][0]["at"] = 7  # past the turns
    assert lib.import_json(msgspec.json.encode(bad).decode(), "y", 1.0).forks == ()
    bad["forks"][0].update(at=1, shown=5)
    assert lib.import_json(msgspec.json.encode(bad).decode(), "y", 1.0).forks == ()


def test_reload_mid_answer_marks_it_interrupted() -> None:
    chat = restore(apply_event(asked(), TokenEvent("Partial")))
    assert chat.turns[-1].status == "stopped" and "Interrupted" in chat.turns[-1].note
    assert chat.turns[-1].text == "Partial"
    done = answered("x")
    assert restore(done) is done


def test_an_answer_the_server_named_is_resumed_after_a_reload_but_not_after_an_import() -> None:
    named = apply_event(apply_event(asked(), AnswerEvent("a1")), TokenEvent("Part"))
    assert resumable(named) == "a1" and named.turns[-1].answer_id == "a1"
    assert restore(named, resume=True) is named  # the page's own storage: the app reads it again
    unnamed = apply_event(asked(), TokenEvent("Part"))  # an older server, or saved before the id came
    assert restore(unnamed, resume=True).turns[-1].note == INTERRUPTED
    imported = restore(named)  # a file is no live answer
    assert imported.turns[-1].status == "stopped" and imported.turns[-1].note == INTERRUPTED
    assert resumable(imported) == "" and "answer_id" not in lib.record_of(imported)
    back = lib.from_records(lib.records(lib.Library(chats=(named,), open_id=named.id)))
    assert back.current == named


def test_a_resumed_answer_is_folded_again_from_its_start() -> None:
    from wire.events import ThoughtEvent

    saved = asked()
    event: Event
    for event in (AnswerEvent("a1"), ThoughtEvent("Hm"), TokenEvent("Stale par")):
        saved = apply_event(saved, event)
    again = replay(saved)  # thoughts too are read again
    assert again.turns[-1] == Turn(user=False, text="", status="pending", answer_id="a1")
    for event in (AnswerEvent("a1"), TokenEvent("Stale part, and the rest."), DONE):
        again = apply_event(again, event)
    last = again.turns[-1]
    assert last.text == "Stale part, and the rest." and last.status == "done" and last.answer_id == ""
    assert replay(again) is again  # nothing on its way


@pytest.mark.parametrize("end", [DONE, ErrorEvent("engine_error", "boom"), None])
def test_an_answer_that_ends_forgets_its_id(end: object) -> None:
    chat = apply_event(asked(), AnswerEvent("a1"))
    chat = stop(chat) if end is None else apply_event(chat, end)
    assert chat.turns[-1].answer_id == "" and resumable(chat) == ""


def test_titles_come_from_the_first_message_unless_renamed() -> None:
    assert title_of(Chat()) == "New chat"
    assert title_of(answered("  What is\n the  capital? ")) == "What is the capital?"
    long = title_of(answered("word " * 40))
    assert long == " ".join(["word"] * 12) + "…"  # whole words, in TITLE_CHARS
    assert title_of(msgspec.structs.replace(answered("x"), title="Mine")) == "Mine"


def test_stats_and_truncation_notice() -> None:
    done = DoneEvent(stop_reason="stop", prompt_tokens=5, completion_tokens=7, ttft_s=0.5, tokens_per_s=20.0,
                     truncated_turns=3)  # fmt: skip
    chat = apply_event(asked(), done)
    assert chat.turns[-1].note == (
        "7 tokens · 20.0 tok/s · first token 0.50 s · finished · 3 old messages left out to fit the context"
    )
    assert chat.turns[-1].truncated_turns == 3


# The library: many chats, saved records, export and import.


def library_of(*chats: Chat, open_id: str = "") -> lib.Library:
    return lib.Library(chats=chats, open_id=open_id or chats[-1].id)


def test_new_chat_opens_an_empty_chat_and_reuses_an_unused_one() -> None:
    first = lib.new_chat(lib.Library(), "a")
    assert first.open_id == "a" and first.current == Chat(id="a")
    assert lib.new_chat(first, "b") is first  # still empty: no second blank chat
    used = lib.update(first, "a", lambda c: submit(c, "hi", now=1.0))
    second = lib.new_chat(used, "b")
    assert second.open_id == "b" and [c.id for c in second.chats] == ["a", "b"]
    assert [c.id for c in second.ordered] == ["a"]  # empty chats are not listed


def test_chats_are_listed_newest_first_and_leaving_an_empty_chat_forgets_it() -> None:
    a = msgspec.structs.replace(answered("a"), id="a", updated=1.0)
    b = msgspec.structs.replace(answered("b"), id="b", updated=2.0)
    library = lib.new_chat(library_of(a, b), "blank")
    assert [c.id for c in library.ordered] == ["b", "a"]
    opened = lib.select(library, "a")
    assert opened.open_id == "a" and [c.id for c in opened.chats] == ["a", "b"]
    assert lib.select(opened, "missing") is opened


def found(library: lib.Library, chat_id: str) -> Chat:
    chat = lib.find(library, chat_id)
    assert chat is not None, chat_id
    return chat


def test_rename_and_delete() -> None:
    a, b = (msgspec.structs.replace(answered(x), id=x, updated=u) for x, u in (("a", 1.0), ("b", 2.0)))
    library = lib.rename(library_of(a, b, open_id="b"), "a", "  My   chat ")
    assert title_of(found(library, "a")) == "My chat"
    after = lib.delete(library, "b")  # the open one: the newest remaining opens
    assert after.open_id == "a" and [c.id for c in after.chats] == ["a"]
    assert lib.delete(after, "a") == lib.Library()


def test_records_round_trip_and_survive_garbage() -> None:
    streaming = apply_event(submit(Chat(id="s", updated=3.0), "q"), TokenEvent("part"))
    library = library_of(answered("x"), streaming, open_id="c")
    records = lib.records(library)
    assert set(records) == {"chat:c", "chat:s", "open"}
    back = lib.from_records({**records, "chat:bad": "{not json", "settings": "{}", "chat:num": 3})
    assert back.open_id == "c"
    assert lib.find(back, "c") == answered("x")
    assert found(back, "s").turns[-1].status == "stopped"  # the reload interrupted it
    assert lib.from_records({"chat:s": records["chat:s"], "open": "gone"}).open_id == "s"


def test_saver_writes_only_what_changed() -> None:
    assert diff({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == ({"b": "3", "c": "4"}, [])
    assert diff({"a": "1", "b": "2"}, {"a": "1"}) == ({}, ["b"])


def test_saver_says_when_the_store_holds_every_write() -> None:
    class SlowStore(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.synced = asyncio.Event()

        async def sync(self) -> None:
            await self.synced.wait()

    async def main() -> list[bool]:
        store, records, said = SlowStore(), {"chat:a": "1"}, list[bool]()
        store["chat:a"] = "1"
        saver = storage.Saver(store, lambda: dict(records), on_saving=said.append)
        records["chat:b"] = "2"
        saver.changed(streaming=False)
        del records["chat:a"]
        saver.changed(streaming=False)
        await asyncio.sleep(0)
        assert said == [True, True] and store == {"chat:b": "2"}  # written, not yet synced
        store.synced.set()
        for _ in range(3):
            await asyncio.sleep(0)
        return said

    assert run_async(main()) == [True, True, False]  # False once, when both writes are in


def test_saver_writes_a_new_answer_id_at_once_while_streaming() -> None:
    async def main() -> None:
        store, records = FakeStore(), {"chat:a": "asked"}
        saver = storage.Saver(store, lambda: dict(records), interval=60)
        records["chat:a"] = "streaming"
        saver.changed(streaming=True)  # the first write of a stream goes at once...
        records["chat:a"] = "more text"
        saver.changed(streaming=True)  # ...then at most one a minute here
        assert store["chat:a"] == "streaming"
        records["chat:a"] = "named a1"
        saver.changed(streaming=True, answers=frozenset({"a1"}))
        assert store["chat:a"] == "named a1"  # a reload now can still resume it
        records["chat:a"] = "named a1, more text"
        saver.changed(streaming=True, answers=frozenset({"a1"}))
        assert store["chat:a"] == "named a1"  # the same id: throttled again

    run_async(main())


def test_export_markdown_and_json_then_import() -> None:
    chat = msgspec.structs.replace(answered("Hello **there**"), title="Greeting")
    md = lib.export_markdown(chat)
    assert md.startswith("# Greeting\n") and "**You:**\n\nHello **there**" in md and "re: Hello **there**" in md
    assert lib.filename_for(chat, "md") == "greeting.md"
    back = lib.import_json(lib.export_json(chat), "new-id", now=9.0)
    assert back.turns == chat.turns and back.id == "new-id" and back.title == "Greeting" and back.updated == 9.0
    with pytest.raises(ValueError, match=re.escape(NOT_OURS)):
        lib.import_json("[1, 2]", "x", 0.0)
    with pytest.raises(ValueError, match=re.escape(NOT_OURS)):
        lib.import_json('{"format": "other", "title": "t", "turns": []}', "x", 0.0)


# Settings.


def test_settings_form_parses_validates_and_round_trips() -> None:
    form = {"temperature": "0.7", "top_p": "", "top_k": "40", "repeat_penalty": "1.1", "max_tokens": "64",
            "seed": "7", "system": "  Be brief.  "}  # fmt: skip
    params, errors = settings.parse(form)
    assert errors == {}
    assert params == SamplingParams(temperature=0.7, top_k=40, repeat_penalty=1.1, max_tokens=64, seed=7,
                                    system="Be brief.")  # fmt: skip
    assert settings.parse(settings.form_of(params)) == (params, {})
    assert settings.load(settings.dump(params)) == params
    assert settings.load("garbage") == SamplingParams() and settings.load(None) == SamplingParams()
    bad, errors = settings.parse({"temperature": "3", "top_k": "1.5", "max_tokens": "0"})
    assert bad == SamplingParams()
    assert set(errors) == {"temperature", "top_k", "max_tokens"}
    assert errors["top_k"] == "Top-k must be a whole number"


# Several models: the chat's model, loading, and which model wrote each answer.


def test_the_chats_model_goes_into_its_request_and_none_means_the_servers_default() -> None:
    from client.state import choose_model

    chat = asked("hi")
    assert request_for(chat).model is None
    assert b'"model"' not in msgspec.json.encode(request_for(chat))  # an older server's request, byte for byte
    on_tiny = choose_model(chat, "tiny.gguf")
    assert request_for(on_tiny).model == "tiny.gguf"
    assert choose_model(on_tiny, "tiny.gguf") is on_tiny
    assert request_for(choose_model(on_tiny, "")).model is None


def test_loading_shows_under_the_pending_answer_until_the_first_token() -> None:
    from wire.events import LoadingEvent

    chat = apply_event(asked(), LoadingEvent(model="big.gguf"))
    assert chat.turns[-1].note == "Loading big.gguf…" and chat.turns[-1].status == "pending"
    chat = apply_event(chat, TokenEvent("Hi"))
    assert chat.turns[-1].note == "" and chat.turns[-1].status == "streaming"
    finished = apply_event(chat, DONE)
    assert apply_event(finished, LoadingEvent(model="late.gguf")) is finished


def test_each_answer_records_the_model_that_wrote_it() -> None:
    streaming = apply_event(asked(), TokenEvent("Hi"))
    said = apply_event(streaming, msgspec.structs.replace(DONE, model="tiny.gguf"), asked="big.gguf")
    assert said.turns[-1].model == "tiny.gguf"  # the server's word wins
    older = apply_event(streaming, DONE, asked="big.gguf")  # an older server names none
    assert older.turns[-1].model == "big.gguf"
    assert apply_event(streaming, DONE).turns[-1].model == ""
    assert stop(streaming, model="big.gguf").turns[-1].model == "big.gguf"
    assert stop(asked(), model="big.gguf").turns[-1].model == ""  # it wrote nothing


def test_the_model_is_saved_exported_and_imported_with_the_chat() -> None:
    from client.state import choose_model

    chat = choose_model(
        apply_event(apply_event(asked("Q"), TokenEvent("A")), msgspec.structs.replace(DONE, model="m.gguf")), "n.gguf"
    )
    chat = msgspec.structs.replace(chat, id="c1", updated=1.0)
    restored = lib.from_records(lib.records(lib.Library(chats=(chat,), open_id="c1")))
    assert restored.current == chat and restored.current.model == "n.gguf" and chat.turns[-1].model == "m.gguf"

    exported = lib.export_json(chat)
    data = msgspec.json.decode(exported)
    assert data["model"] == "n.gguf" and data["turns"][-1]["model"] == "m.gguf"
    back = lib.import_json(exported, "c2", 5.0)
    assert back.model == "n.gguf" and back.turns == chat.turns
    assert "**Assistant:** (m.gguf)" in lib.export_markdown(chat)

    # An export from before models were per chat still imports, on the server's default.
    old = '{"format": "snake_llama.chat.v1", "title": "t", "turns": [{"user": true, "text": "hi"}]}'
    assert lib.import_json(old, "c3", 1.0).model == ""


def test_a_new_chat_starts_on_the_model_it_is_given() -> None:
    opened = lib.new_chat(lib.Library(), "a", "tiny.gguf")
    assert opened.current.model == "tiny.gguf"
    assert lib.new_chat(opened, "b", "other.gguf") is opened  # the open chat is still empty: reused


# Find and keep: search, pins, export of all chats.


def two_chats() -> lib.Library:
    older = msgspec.structs.replace(answered("Bread recipe"), id="old", updated=1.0, title="Baking")
    newer = apply_event(apply_event(regenerate(answered("Tell me about Rust")), TokenEvent("Again")), DONE)
    newer = msgspec.structs.replace(newer, id="new", updated=2.0, title="Rust")  # with two versions
    return lib.Library(chats=(older, newer), open_id="new")


def test_search_matches_titles_and_message_text_case_insensitively() -> None:
    library = two_chats()
    old, new = lib.find(library, "old"), lib.find(library, "new")
    assert old is not None and new is not None
    assert lib.matches(old, "BAKING") and not lib.matches(new, "baking")  # the title
    assert lib.matches(old, "bread") and lib.matches(old, "RE: BREAD")  # the user's and the model's text
    assert lib.matches(new, "  about RUST  ") and not lib.matches(old, "rust")
    assert lib.matches(old, "") and lib.matches(new, "   ")  # no query: everything
    assert not lib.matches(old, "nowhere")


def test_pinned_chats_come_first_and_the_pins_are_saved() -> None:
    library = two_chats()
    assert [c.id for c in library.ordered] == ["new", "old"]
    pinned = lib.set_pinned(library, "old", True)
    assert [c.id for c in pinned.ordered] == ["old", "new"]
    assert lib.set_pinned(library, "gone", True) is library
    records = lib.records(pinned)
    assert records["pinned"] == '["old"]'
    assert lib.from_records(records).pinned == {"old"}
    assert lib.from_records({**records, "pinned": "{bad"}).pinned == frozenset()
    assert lib.from_records({**records, "pinned": '["old", "gone"]'}).pinned == {"old"}
    assert "pinned" not in lib.records(lib.set_pinned(pinned, "old", False))
    assert lib.delete(pinned, "old").pinned == frozenset()
    assert lib.select(pinned, "old").pinned == {"old"}  # opening a chat keeps the pins
    assert lib.new_chat(pinned, "fresh").pinned == {"old"}


def test_export_all_then_import_many_round_trips_exactly() -> None:
    library = lib.set_pinned(two_chats(), "new", True)
    text = lib.export_all_json(library)
    assert msgspec.json.decode(text)["format"] == lib.EXPORT_ALL_FORMAT
    imported = lib.import_many(text, lambda: "unused", now=99.0)
    assert [c.id for c in imported.chats] == ["new", "old"]  # in list order: pinned first; their own ids
    originals = {c.id: c for c in library.chats}
    for chat in imported.chats:
        assert chat == originals[chat.id]  # turns, versions, title, date
    assert imported.pinned == {"new"}
    assert lib.export_all_json(msgspec.structs.replace(imported, open_id="new")) == text
    ids = iter(["n1", "n2"])
    merged = lib.add(lib.Library(chats=(Chat(id="blank"),), open_id="blank"), imported, lambda: next(ids))
    assert merged.open_id == "new" and [c.id for c in merged.ordered] == ["new", "old"]
    assert "blank" not in {c.id for c in merged.chats}  # the empty chat that was open is dropped
    for bad in ("[1]", '{"format": "snake_llama.chats.v1", "chats": 3}', '{"format": "other"}', "Hello", ""):
        with pytest.raises(ValueError, match=re.escape(NOT_OURS)):
            lib.import_many(bad, lambda: "x", 0.0)


def test_a_one_chat_export_still_imports_through_import_many() -> None:
    chat = msgspec.structs.replace(apply_event(regenerate(answered("Hello")), DONE), title="Hi")
    single = lib.import_many(lib.export_json(chat, pinned=True), lambda: "unused", now=7.0)
    assert single.chats == (msgspec.structs.replace(chat, updated=7.0),) and single.pinned == {chat.id}
    old = '{"format": "snake_llama.chat.v1", "title": "Old", "turns": [{"user": true, "text": "hi"}]}'
    (chat_of_old,) = lib.import_many(old, lambda: "o", now=3.0).chats  # an older export: no id, a fresh one
    assert chat_of_old.id == "o" and chat_of_old.title == "Old" and chat_of_old.updated == 3.0
    assert [t.text for t in chat_of_old.turns] == ["hi"]


# Thoughts: a thinking model's reasoning before its answer.


def thinking_chat() -> Chat:
    from wire.events import ThoughtEvent

    chat = asked("Capital of France?")
    for event in (ThoughtEvent("France, "), ThoughtEvent("so Paris."), TokenEvent("Paris."), DONE):
        chat = apply_event(chat, event)
    return msgspec.structs.replace(chat, id="c1", title="Thinking", updated=1.0)


def test_thoughts_stream_into_the_answer_apart_from_its_text() -> None:
    from wire.events import ThoughtEvent

    chat = apply_event(asked(), ThoughtEvent("Hm"))
    assert chat.turns[-1].status == "streaming" and (chat.turns[-1].thoughts, chat.turns[-1].text) == ("Hm", "")
    done = thinking_chat().turns[-1]
    assert (done.thoughts, done.text, done.status) == ("France, so Paris.", "Paris.", "done")
    assert apply_event(thinking_chat(), ThoughtEvent("late")) == thinking_chat()  # over: nothing more folds in
    assert stop(chat, model="m.gguf").turns[-1].model == "m.gguf"  # it thought: it wrote something


def test_an_answer_or_thoughts_longer_than_a_message_may_be_are_cut_so_the_chat_goes_on() -> None:
    from wire.events import ThoughtEvent
    from wire.types import MAX_TEXT, ConverseRequest

    chat = asked("Write a lot")
    long_thoughts, long_answer = "t" * MAX_TEXT + "end of thoughts", "start of answer" + "a" * MAX_TEXT
    for event in (ThoughtEvent(long_thoughts), TokenEvent(long_answer), DONE):
        chat = apply_event(chat, event)
    request = request_for(submit(chat, "And?"))
    answer = request.conversation.messages[1]
    assert len(answer.text) == len(answer.thoughts) == MAX_TEXT
    assert answer.text.startswith("start of answer") and answer.thoughts.endswith("end of thoughts")
    assert msgspec.json.decode(msgspec.json.encode(request), type=ConverseRequest) == request  # the server takes it


def test_the_next_request_carries_each_answers_thoughts_and_old_requests_are_unchanged() -> None:
    from wire.types import Message

    sent = request_for(submit(thinking_chat(), "And Italy?")).conversation.messages
    assert sent == [Message(True, "Capital of France?"), Message(False, "Paris.", "France, so Paris."),
                    Message(True, "And Italy?")]  # fmt: skip
    plain = request_for(submit(answered("hi"), "next"))
    assert b"thoughts" not in msgspec.json.encode(plain)  # what an older server takes, byte for byte


def test_thoughts_are_saved_exported_and_imported() -> None:
    chat = thinking_chat()
    restored = lib.from_records(lib.records(lib.Library(chats=(chat,), open_id="c1")))
    assert restored.current == chat
    back = lib.import_json(lib.export_json(chat), "c2", 5.0)
    assert back.turns == chat.turns and back.turns[-1].thoughts == "France, so Paris."
    many = lib.import_many(lib.export_all_json(lib.Library(chats=(chat,), open_id="c1")), lambda: "c3", 5.0)
    assert many.chats[0].turns == chat.turns
    md = lib.export_markdown(msgspec.structs.replace(chat, turns=chat.turns[:-1] + (
        msgspec.structs.replace(chat.turns[-1], thoughts="France,\n\nso Paris."),)))
    assert "**Assistant:**\n\n> *Thoughts:*\n>\n> France,\n>\n> so Paris.\n\nParis.\n" in md
    assert "Thoughts" not in lib.export_markdown(answered("hi"))


# Attachments.

CODE = Attachment("greet.py", "print('hi')\n")


def test_a_message_may_be_files_only_and_the_model_gets_them_fenced() -> None:
    assert submit(Chat(), "  ") == Chat()  # no text, no files: nothing to send
    chat = submit(Chat(id="c"), "", files=(CODE,))
    assert chat.turns[0] == Turn(user=True, text="", files=(CODE,)) and chat.busy
    assert title_of(chat) == "greet.py"
    sent = request_for(submit(answer(chat, "It prints hi."), "And?")).conversation.messages
    assert [m.text for m in sent] == ["File: greet.py\n```python\nprint('hi')\n```", "It prints hi.", "And?"]
    with_text = submit(Chat(), "Explain.", files=(CODE, Attachment("n.txt", "x")))
    assert request_for(with_text).conversation.messages[0].text == compose("Explain.", with_text.turns[0].files)


def test_edit_replaces_a_message_s_files_and_keeps_the_old_ones_as_a_version() -> None:
    chat = answer(submit(Chat(id="c"), "Explain.", files=(CODE,)), "It prints.")
    other = Attachment("other.py", "pass\n")
    edited = edit(chat, 0, "", files=(other,))
    assert edited.turns[0].files == (other,) and edited.turns[0].text == ""
    assert switch_version(answer(edited, "Nothing."), 0, -1).turns[0].files == (CODE,)
    assert edit(chat, 0, "", files=()) is chat  # blank


def test_files_are_saved_exported_and_imported_and_old_records_have_none() -> None:
    chat = answer(submit(Chat(id="c", updated=1.0), "Explain.", files=(CODE,)), "It prints.")
    assert lib.find(lib.from_records(lib.records(library_of(chat, open_id="c"))), "c") == chat
    assert lib.import_json(lib.export_json(chat), "c", now=1.0).turns == chat.turns
    everything = lib.import_many(lib.export_all_json(library_of(chat, open_id="c")), lambda: "n", 2.0)
    assert everything.chats[0].turns == chat.turns
    md = lib.export_markdown(chat)
    assert "**You:**\n\nFile: greet.py\n```python\nprint('hi')\n```\n\nExplain.\n" in md
    assert '"files"' not in lib.record_of(answered("plain"))  # a message without files is stored as before


# A chat's own settings: system prompt and sampling preset.

OWN = "You are a pirate.\n\n  Answer in one word.\n"


def test_configure_keeps_the_system_prompt_as_written_within_its_bound() -> None:
    chat = configure(Chat(), OWN, "Creative")
    assert (chat.system, chat.preset) == (OWN, "Creative")
    assert configure(chat, OWN, "Creative") is chat  # unchanged: the same value
    assert configure(chat, " \n ", "").system == ""  # all whitespace: no system prompt
    assert configure(chat, None, "").system is None  # back to the global one
    assert configure(Chat(), "x" * (SYSTEM_MAX + 5), "").system == "x" * SYSTEM_MAX


def test_a_new_chat_starts_on_the_default_settings() -> None:
    opened = lib.new_chat(lib.Library(), "a")
    assert (opened.current.system, opened.current.preset) == (None, "")
    # Set up while still empty, then New chat: the blank chat is reused, back on the defaults.
    tuned = lib.update(opened, "a", lambda c: configure(c, OWN, "Precise"))
    again = lib.new_chat(tuned, "b")
    assert again.open_id == "a" and (again.current.system, again.current.preset) == (None, "")


def test_the_chats_settings_are_saved_exported_and_imported() -> None:
    for system in (OWN, ""):  # its own prompt, and none at all: both distinct from None
        chat = msgspec.structs.replace(configure(answered("q"), system, "Cold"), id="c1", updated=1.0)
        restored = lib.from_records(lib.records(lib.Library(chats=(chat,), open_id="c1")))
        assert restored.current == chat and restored.current.system == system
        back = lib.import_json(lib.export_json(chat), "c2", 5.0)
        assert (back.system, back.preset) == (system, "Cold")
        everything = lib.import_many(lib.export_all_json(restored), iter(["c3"]).__next__, 5.0)
        assert (everything.chats[0].system, everything.chats[0].preset) == (system, "Cold")
    plain = msgspec.structs.replace(answered("q"), id="c4")
    assert "system" not in lib.record_of(plain) and "preset" not in lib.record_of(plain)  # defaults not stored
    old = '{"format": "snake_llama.chat.v1", "title": "t", "turns": [{"user": true, "text": "hi"}]}'
    assert (lib.import_json(old, "c5", 1.0).system, lib.import_json(old, "c5", 1.0).preset) == (None, "")
    too_long = msgspec.json.decode(lib.export_json(chat))
    too_long["system"] = "x" * 20_000
    with pytest.raises(ValueError, match="not a snake_llama chat export"):
        lib.import_json(msgspec.json.encode(too_long).decode(), "c6", 1.0)


def test_a_deleted_preset_is_named_by_no_chat() -> None:
    cold = msgspec.structs.replace(configure(answered("q"), OWN, "Cold"), id="a")
    warm = msgspec.structs.replace(configure(answered("r"), None, "Warm"), id="b")
    library = lib.Library(chats=(cold, warm), open_id="a")
    after = lib.forget_preset(library, "Cold")
    assert [(c.system, c.preset) for c in after.chats] == [(OWN, ""), (None, "Warm")]  # its own prompt stays
    assert "preset" not in lib.export_markdown(after.current)
    assert lib.forget_preset(after, "Cold") is after  # none named it: unchanged, nothing to save


def test_markdown_export_names_the_chats_own_system_prompt_and_preset() -> None:
    own = lib.export_markdown(configure(answered("q"), OWN, "Creative"))
    assert f"**System prompt:**\n\n{OWN}\n" in own and "*Sampling preset: Creative*" in own
    assert "*No system prompt.*" in lib.export_markdown(configure(answered("q"), "", ""))
    plain = lib.export_markdown(answered("q"))
    assert "System prompt" not in plain and "preset" not in plain  # the global ones are not the chat's


def test_a_prompt_being_read_shows_in_the_pending_answer_until_its_first_token() -> None:
    from wire.events import ProgressEvent

    chat = apply_event(asked(), QueuedEvent(position=2))
    chat = apply_event(chat, ProgressEvent(processed=256, total=3412, cached=0))
    assert chat.turns[-1].reading == (256, 3412) and chat.turns[-1].note == "" and chat.turns[-1].status == "pending"
    chat = apply_event(chat, ProgressEvent(processed=1536, total=3412, cached=0))
    assert chat.turns[-1].reading == (1536, 3412)
    chat = apply_event(chat, TokenEvent("Hi"))
    assert chat.turns[-1].reading is None and chat.turns[-1].status == "streaming"
    assert apply_event(chat, ProgressEvent(processed=3000, total=3412, cached=0)) is chat  # too late: ignored


def test_messages_and_answers_keep_when_they_were_written_and_old_chats_have_no_time() -> None:
    chat = submit(Chat(), "Hi", now=1_700_000_000.0)
    assert [t.written for t in chat.turns] == [1_700_000_000.0, 1_700_000_000.0]
    edited = edit(replace(chat, turns=chat.turns[:1]), 0, "Hello", now=1_700_000_060.0)
    assert edited.turns[0].written == 1_700_000_060.0
    assert msgspec.json.decode(b'{"user": true, "text": "old"}', type=Turn).written == 0.0  # saved before: none


def test_a_stopped_answer_takes_the_servers_numbers_once_and_only_its_own() -> None:
    chat = stop(submit(Chat(), "Hi"), model="asked.gguf")
    chat = replace(chat, turns=(chat.turns[0], replace(chat.turns[1], text="partial")))
    done = DoneEvent("cancelled", 9, 4, 0.25, 20.0, model="m.gguf")
    after = stopped_stats(chat, 1, "partial", done)
    note = "4 tokens · 20.0 tok/s · first token 0.25 s · Stopped"
    assert (after.turns[1].note, after.turns[1].model) == (note, "m.gguf")
    assert stopped_stats(after, 1, "partial", done) is after  # numbers already
    assert stopped_stats(chat, 1, "other text", done) is chat  # not the answer that was stopped
    assert stopped_stats(chat, 5, "partial", done) is chat
    assert stopped_stats(chat, 1, "partial", DoneEvent("cancelled", 9, 0, None, None)) is chat  # wrote nothing
