"""The answers on their way (client.streams) on CPython: started, stopped before and after the server
names them, resumed after a reload; with a fake server, and the signals App would give."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from reaktiv import Signal

from client import library as lib
from client.errors import CONNECTION_LOST, CUT_OFF
from client.rpc import UNAUTHORIZED
from client.state import INTERRUPTED, Chat, continue_answer, request_for, submit
from client.streams import NEEDS_KEY, PAGE_FAILED, AnswerStreams, KeyRequest
from tests.fakes import DONE, FakeServer, mid_answer
from tests.harness import run_async
from wire.events import AnswerEvent, DoneEvent, ErrorEvent, Event, TokenEvent
from wire.types import ConverseRequest, SamplingParams

T = TypeVar("T")

class Page:
    """What App hands its AnswerStreams: the chats, what it does when the server is lost, the
    key-request signal, and a spawn that keeps the tasks (to settle them); `send` asks in the open
    chat as App.send does."""

    def __init__(self, server: FakeServer, library: lib.Library | None = None) -> None:
        self.library = Signal(library or lib.new_chat(lib.Library(), "c1"))
        self.lost = 0  # times the server was found gone
        self.key_request: Signal[KeyRequest | None] = Signal(None)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.streams = AnswerStreams(
            server,
            self.library,
            self.spawn,
            request=lambda chat: request_for(chat, SamplingParams()),
            default_model=lambda: "",
            on_lost=self.on_lost,
            key_request=self.key_request,
            stop_wait_s=0.05,
        )

    def on_lost(self) -> None:
        self.lost += 1

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def settle(self) -> None:
        """Let every task started run to its end."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))

    async def ended(self) -> None:
        """Let every task started end, stopped ones too."""
        await asyncio.gather(*list(self.tasks), return_exceptions=True)

    @property
    def current(self) -> Chat:
        return self.library().current

    def send(self, text: str) -> bool:
        """False if not sent: the open chat's answer is still on its way."""
        before = self.current
        after = submit(before, text, time.time())
        if after is before:
            return False
        self.library.set(lib.update(self.library(), before.id, lambda _c: after))
        self.streams.start(before.id)
        return True

    def stop(self) -> bool:
        return self.streams.stop(self.library().open_id)


def test_an_answer_streams_into_its_chat() -> None:
    async def run() -> None:
        server = FakeServer([AnswerEvent("a1"), TokenEvent(text="Hel"), TokenEvent(text="lo"), DONE])
        page = Page(server)
        assert page.send("Hi")
        assert page.current.busy and not page.send("Again")  # one answer at a time per chat
        await page.settle()
        turns = page.current.turns
        assert [(t.user, t.text, t.status) for t in turns] == [(True, "Hi", "done"), (False, "Hello", "done")]
        assert server.calls[0][1].conversation.messages[0].text == "Hi"
        assert not page.stop()  # nothing on its way any more

    run_async(run())


def test_stop_cancels_the_open_chats_answer_and_keeps_what_arrived() -> None:
    async def run() -> None:
        release = asyncio.Event()

        class Slow(FakeServer):
            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                async def stream() -> AsyncIterator[Event]:
                    yield TokenEvent(text="partial")
                    await release.wait()
                    yield DONE

                return stream()

        page = Page(Slow())
        page.send("Hi")
        await asyncio.sleep(0.01)
        assert page.current.turns[-1].status == "streaming"
        assert page.stop()
        await page.ended()
        last = page.current.turns[-1]
        assert last.status == "stopped" and last.text == "partial"

    run_async(run())


def test_stop_asks_the_server_to_cancel_the_named_answer() -> None:
    async def run() -> None:
        release = asyncio.Event()

        class Slow(FakeServer):
            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                async def stream() -> AsyncIterator[Event]:
                    yield AnswerEvent("a1")
                    yield TokenEvent(text="partial")
                    await release.wait()

                return stream()

        server = Slow()
        page = Page(server)
        page.send("Hi")
        await asyncio.sleep(0.01)
        page.stop()
        await page.ended()
        assert server.stopped == ["a1"]  # and its failing did not keep the answer going here
        last = page.current.turns[-1]
        assert last.status == "stopped" and last.text == "partial" and last.answer_id == ""

    run_async(run())


def test_a_stopped_answer_gets_the_servers_numbers_and_model_and_a_new_answer_starts_at_once() -> None:
    async def run() -> None:
        stopped, read_on = asyncio.Event(), asyncio.Event()
        cancelled = DoneEvent("cancelled", 9, 4, 0.25, 20.0, model="m.gguf")

        class Slow(FakeServer):
            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                async def stream() -> AsyncIterator[Event]:
                    yield AnswerEvent("a1")
                    yield TokenEvent(text="partial")
                    await stopped.wait()
                    yield TokenEvent(text=" after the stop")  # sent before the server heard: not shown
                    await read_on.wait()
                    yield cancelled

                if self.calls:  # the second answer
                    return super().converse(request)
                self.calls.append((self.api_key, request))
                return stream()

        server = Slow([AnswerEvent("a2"), TokenEvent(text="again"), DONE])
        page = Page(server)
        page.send("Hi")
        await asyncio.sleep(0.01)
        assert page.stop()
        at_once = page.current.turns[-1]
        assert (at_once.status, at_once.note) == ("stopped", "Stopped")
        stopped.set()
        await asyncio.sleep(0.01)
        assert page.send("Next") and page.current.busy  # the chat is free while the stopped stream is read on
        read_on.set()
        await page.ended()
        first = page.current.turns[1]
        assert first.status == "stopped" and first.text == "partial" and first.model == "m.gguf"
        assert first.note == "4 tokens · 20.0 tok/s · first token 0.25 s · Stopped" and first.tokens == 13
        second = page.current.turns[-1]
        assert (second.text, second.status) == ("again", "done")
        assert server.stopped == ["a1"]

    run_async(run())


def test_stop_before_the_answer_is_named_stops_it_here_at_once_and_on_the_server_once_named() -> None:
    async def run() -> None:
        asked, named = asyncio.Event(), asyncio.Event()
        read_on: list[str] = []

        class Unnamed(FakeServer):
            """The answer's id comes late: a server still fitting the prompt before it answers."""

            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                if self.calls:
                    return super().converse(request)
                self.calls.append((self.api_key, request))

                async def stream() -> AsyncIterator[Event]:
                    asked.set()
                    await named.wait()
                    yield AnswerEvent("a1")
                    read_on.append("past the id")
                    yield TokenEvent(text="late")
                    yield DONE

                return stream()

        server = Unnamed([TokenEvent(text="B"), DONE])
        page = Page(server)
        page.send("Hi")
        await asked.wait()
        page.stop()
        assert page.current.turns[-1].status == "stopped" and server.stopped == []  # stopped here at once
        assert page.send("Again")  # the chat is free: a new answer may start before the old one is named
        named.set()
        await page.settle()
        assert server.stopped == ["a1"] and read_on == []  # asked to stop once named, and read no further
        assert [(t.text, t.status) for t in page.current.turns] == [
            ("Hi", "done"), ("", "stopped"), ("Again", "done"), ("B", "done")
        ]

    run_async(run())


def test_the_old_answer_ending_leaves_the_newer_one_in_its_chat_stoppable() -> None:
    async def run() -> None:
        named = asyncio.Event()

        class Late(FakeServer):
            """The first answer is named late; the second at once, and then it waits."""

            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                first = not self.calls
                self.calls.append((self.api_key, request))

                async def stream() -> AsyncIterator[Event]:
                    if first:
                        await named.wait()
                        yield AnswerEvent("a1")
                    yield AnswerEvent("a2")
                    await asyncio.Event().wait()  # until stopped
                    yield DONE

                return stream()

        server = Late()
        page = Page(server)
        page.send("Hi")
        await asyncio.sleep(0.01)
        page.stop()  # before it is named
        page.send("Again")
        named.set()
        await asyncio.sleep(0.01)  # the first answer is named, stopped, and its task gone
        assert server.stopped == ["a1"] and page.current.turns[-1].answer_id == "a2"
        assert page.stop()  # the newer answer is still followed
        await page.ended()
        assert server.stopped == ["a1", "a2"] and page.current.turns[-1].status == "stopped"

    run_async(run())


def test_a_fault_while_reading_fails_the_answer_instead_of_leaving_it_streaming() -> None:
    async def run() -> None:
        class Broken(FakeServer):
            def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
                async def stream() -> AsyncIterator[Event]:
                    yield TokenEvent(text="so far")
                    raise RuntimeError("boom")

                return stream()

        page = Page(Broken())
        page.send("Hi")
        await page.ended()
        last = page.current.turns[-1]
        assert last.status == "error" and PAGE_FAILED in last.text and "RuntimeError" not in last.text
        assert not page.stop()

    run_async(run())


def test_an_unreachable_server_is_reported_and_the_answer_says_so_in_plain_words() -> None:
    async def run() -> None:
        page = Page(FakeServer([ErrorEvent(type="network", message="TypeError: network error")]))
        page.send("Hi")
        await page.settle()
        last = page.current.turns[-1]
        assert page.lost == 1 and last.status == "error" and last.text == CONNECTION_LOST
        assert page.current.turns[0].text == "Hi"  # the message is kept

    run_async(run())


def test_a_connection_dropped_mid_answer_keeps_the_text_and_continue_finishes_it() -> None:
    async def run() -> None:
        dropped: list[Event] = [AnswerEvent("a1"), TokenEvent(text="1, 2,"), ErrorEvent("network", "TypeError: x")]
        rest: list[Event] = [AnswerEvent("a2"), TokenEvent(text=" 3, 4."), DONE]
        server = FakeServer(dropped, rest)
        page = Page(server)
        page.send("Count")
        await page.settle()
        last = page.current.turns[-1]
        assert (last.status, last.text, last.note, last.unfinished) == ("stopped", "1, 2,", CUT_OFF, True)
        assert "TypeError" not in last.text and page.lost == 1

        chat = continue_answer(page.current)
        page.library.set(lib.update(page.library(), chat.id, lambda _c: chat))
        page.streams.start(chat.id)
        await page.settle()
        asked = server.calls[-1][1]
        assert asked.continue_ and [m.text for m in asked.conversation.messages] == ["Count", "1, 2,"]
        last = page.current.turns[-1]
        assert (last.status, last.text, last.unfinished, len(page.current.turns)) == ("done", "1, 2, 3, 4.", False, 2)

    run_async(run())


def test_a_401_while_resuming_asks_for_the_key_and_is_no_lost_answer() -> None:
    async def run() -> None:
        server = FakeServer([ErrorEvent(type=UNAUTHORIZED, message="missing key")])
        page = Page(server, mid_answer("The wh"))
        page.streams.resume_all()
        await page.settle()
        assert page.key_request() == KeyRequest("c1", wrong=False)
        last = page.current.turns[-1]
        assert last.status == "error" and last.note != INTERRUPTED and NEEDS_KEY in last.text

    run_async(run())


def test_a_reloaded_page_resumes_its_answer_from_the_start() -> None:
    async def run() -> None:
        server = FakeServer([AnswerEvent("a1"), TokenEvent(text="The whole"), TokenEvent(text=" answer"), DONE])
        page = Page(server, mid_answer("The wh"))
        assert page.current.busy  # not marked interrupted: it is on its way still
        page.streams.resume_all()
        await page.settle()
        last = page.current.turns[-1]
        assert server.resumed == ["a1"] and server.calls == []  # read again, not asked again
        assert last.text == "The whole answer" and last.status == "done" and last.answer_id == ""

    run_async(run())


def test_an_answer_the_server_let_go_is_interrupted() -> None:
    async def run() -> None:
        server = FakeServer([ErrorEvent(type="answer_not_found", message="no such answer")])
        page = Page(server, mid_answer("The wh"))
        page.streams.resume_all()
        await page.settle()
        last = page.current.turns[-1]
        assert last.text == "The wh" and last.status == "stopped" and last.note == INTERRUPTED

    run_async(run())
