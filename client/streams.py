"""The answers on their way: each started, followed into its chat, stopped, or resumed after a reload.

An answer is a task that reads the server's events (client.rpc) and folds each into *its* chat by
id (client.state.apply_event), so switching chats mid-answer is harmless. At most one answer per
chat is followed; a newer one in the same chat takes its place.

Stop has two cases. Once the server has named the answer (its first event, from our server), the
chat stops at once, the server is asked to cancel it by that id, and the stream is read on, folding
nothing, to the server's `done`: its numbers (tokens, speed) and model join the stopped answer.
Before then there is no id to ask with, so the chat stops at once and the stream is read on,
folding nothing, up to the event that names it. Either way the server is asked: left alone, an
answer runs on for the grace period a reload gets.

No DOM here: the browser comes in through the RPC `Client`; tests hand in a fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from reaktiv import Signal

from client import library as lib
from client.errors import LOST
from client.rpc import UNAUTHORIZED, Client
from client.state import INTERRUPTED, Chat, apply_event, fail, replay, resumable, stop, stopped_stats, waiting_calls
from wire.events import AnswerEvent, DoneEvent, ErrorEvent, Event
from wire.types import ConverseRequest

NEEDS_KEY = "This server needs an API key."
STOP_WAIT_S = 10.0  # how long a stopped answer's `done` is waited for (the server sends it within a token)
PAGE_FAILED = "Something went wrong in the page with this answer. Press Regenerate to ask again."

Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]  # runs a task and keeps it referenced


@dataclass(frozen=True)
class KeyRequest:
    """The server refused an answer for want of an API key: ask for one, then retry `chat_id`."""

    chat_id: str
    wrong: bool  # a key was sent, and refused


async def _close(events: AsyncIterator[Event]) -> None:
    """Close a stream read only in part (an async generator: rpc aborts its fetch when closed)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


class AnswerStreams:
    """Follows each chat's answer into `library`.

    `request(chat)`: what the server is asked for the chat's next answer, built when it is asked,
    once `prepare(chat)` has made ready what it needs (the chat's images, from the page's store).
    `default_model()`: the model recorded on an answer from a chat that names none, when the server
    does not say. `on_lost()` is called when the server could not be reached or went away
    mid-answer; `key_request` is told when it wants an API key; `on_calling(chat_id)` when an
    answer ends in tool calls that wait for the user's word; `stop_wait_s`: how long a stopped
    answer's `done` is waited for. `spawn` runs and keeps a task (asyncio holds tasks weakly).
    """

    def __init__(
        self,
        client: Client,
        library: Signal[lib.Library],
        spawn: Spawn,
        *,
        request: Callable[[Chat], ConverseRequest],
        prepare: Callable[[Chat], Awaitable[None]] | None = None,
        default_model: Callable[[], str],
        on_lost: Callable[[], object],
        key_request: Signal[KeyRequest | None],
        on_calling: Callable[[str], None] = lambda _chat_id: None,
        stop_wait_s: float = STOP_WAIT_S,
    ) -> None:
        self.client = client
        self.library = library
        self.spawn = spawn
        self.request = request
        self.prepare = prepare
        self.default_model = default_model
        self.on_lost = on_lost
        self.key_request = key_request
        self.on_calling = on_calling
        self.stop_wait_s = stop_wait_s
        self._streams: dict[str, asyncio.Task[None]] = {}  # chat id -> its answer being followed
        self._unheard: set[asyncio.Task[Any]] = set()  # answers followed that no event came from yet
        # Answers stopped before their first event: read on to it, only to learn the id to stop them by.
        self._unnamed_stops: set[asyncio.Task[Any]] = set()
        # Answers stopped by their id, read on to the server's `done`: what to do with it in their chat.
        self._stopping: dict[asyncio.Task[Any], Callable[..., Chat]] = {}

    def start(self, chat_id: str) -> None:
        """Stream the model's answer to the last user message of chat `chat_id` into it."""
        self._streams[chat_id] = self.spawn(self._answer(chat_id))

    def resume_all(self) -> None:
        """At start: resume every answer that was on its way when the page went away."""
        for chat in self.library().chats:
            answer_id = resumable(chat)
            if answer_id:
                self._streams[chat.id] = self.spawn(self._resume(chat.id, answer_id))

    def stop(self, chat_id: str) -> bool:
        """Stop chat `chat_id`'s answer, here at once and on the server (see the module's docstring);
        False if it has none on its way."""
        task = self._streams.get(chat_id)
        if task is None:
            return False
        chat = lib.find(self.library(), chat_id) or Chat(id=chat_id)
        answer_id = resumable(chat)
        if answer_id:
            self._stop_named(chat, task, answer_id)
            return True
        if task not in self._unheard:  # from a server that names none
            task.cancel()
            return True
        del self._streams[chat_id]  # a new answer may start in this chat at once
        self._unnamed_stops.add(task)
        self._change(chat_id, partial(stop, model=self._asked(chat)))
        return True

    def _stop_named(self, chat: Chat, task: asyncio.Task[None], answer_id: str) -> None:
        """Stop a named answer here at once, and ask the server to; its stream is read on to the
        server's `done`, whose numbers join the stopped answer (client.state.stopped_stats)."""
        del self._streams[chat.id]  # a new answer may start in this chat at once
        index, text = len(chat.turns) - 1, chat.turns[-1].text
        self._stopping[task] = partial(stopped_stats, index=index, text=text)
        self._change(chat.id, partial(stop, model=self._asked(chat)))
        self.spawn(self.client.stop(answer_id))
        self.spawn(self._give_up(task))

    async def _give_up(self, task: asyncio.Task[None]) -> None:
        """A stopped answer whose `done` does not come (the server went away) is read no longer."""
        await asyncio.sleep(self.stop_wait_s)
        task.cancel()

    async def _answer(self, chat_id: str) -> None:
        chat = lib.find(self.library(), chat_id)
        if chat is not None and self.prepare is not None:
            try:
                await self.prepare(chat)
            except asyncio.CancelledError:  # Stop before anything was asked
                self._change(chat_id, partial(stop, model=self._asked(chat)))
                raise
            chat = lib.find(self.library(), chat_id)  # as it is now: it may have changed meanwhile
        if chat is None:
            return
        await self._follow(chat_id, self.client.converse(self.request(chat)), self._asked(chat))

    async def _resume(self, chat_id: str, answer_id: str) -> None:
        """Read chat `chat_id`'s answer `answer_id` again from its start (the page was reloaded while it
        came); the answer is interrupted where the server no longer has it."""
        chat = lib.find(self.library(), chat_id)
        if chat is None:
            return
        await self._follow(chat_id, self.client.resume(answer_id), self._asked(chat), resumed=True)

    def _asked(self, chat: Chat) -> str:
        return chat.model or self.default_model()  # recorded on the answer if the server does not say

    def _change(self, chat_id: str, transition: Callable[[Chat], Chat]) -> None:
        self.library.set(lib.update(self.library(), chat_id, transition))

    async def _follow(self, chat_id: str, events: AsyncIterator[Event], asked: str, resumed: bool = False) -> None:
        """Fold `events` into chat `chat_id`; `resumed`: they replay the answer from its start."""
        me = asyncio.current_task()
        assert me is not None  # always run as a task (start, resume_all)
        self._unheard.add(me)
        try:
            async for event in events:
                self._unheard.discard(me)
                if me in self._stopping:  # stopped here: only its numbers are still wanted
                    if isinstance(event, DoneEvent):
                        self._change(chat_id, partial(self._stopping[me], done=event))
                    if isinstance(event, DoneEvent | ErrorEvent):
                        return
                    continue
                if me in self._unnamed_stops:  # Stop came before the id: this event brings it, or none will
                    await self._stop_once_named(event, events)
                    return
                if not self._fold(chat_id, event, asked, first_of_replay=resumed):
                    return
                resumed = False
        except asyncio.CancelledError:  # Stop: the server was asked to cancel, and rpc aborted the request
            if me not in self._stopping:  # (else the chat stopped already, and may be answering anew)
                self._change(chat_id, partial(stop, model=asked))
            raise
        except Exception:  # a bug, not a server error: still never leave the chat stuck
            if me not in self._stopping:
                self._change(chat_id, lambda c: fail(c, PAGE_FAILED))
            raise
        finally:
            self._stopping.pop(me, None)
            self._unnamed_stops.discard(me)
            self._unheard.discard(me)
            if self._streams.get(chat_id) is me:  # not a newer answer's task
                del self._streams[chat_id]

    def _fold(self, chat_id: str, event: Event, asked: str, first_of_replay: bool) -> bool:
        """Apply one event to chat `chat_id`; False when the answer ends with it."""
        if isinstance(event, ErrorEvent) and event.type in LOST:
            self.on_lost()
        # Before the replay's check: a 401 asks for the key, it does not mean the answer is gone.
        if isinstance(event, ErrorEvent) and event.type == UNAUTHORIZED:
            self._change(chat_id, lambda c: fail(c, NEEDS_KEY))
            self.key_request.set(KeyRequest(chat_id, wrong=bool(self.client.api_key)))
            return False
        if first_of_replay:  # it says whether the server still has the answer
            if isinstance(event, ErrorEvent):
                self._change(chat_id, partial(stop, why=INTERRUPTED, model=asked))
                return False
            self._change(chat_id, replay)
        self._change(chat_id, partial(apply_event, event=event, asked=asked))
        if isinstance(event, DoneEvent) and waiting_calls(lib.find(self.library(), chat_id) or Chat()):
            self.on_calling(chat_id)
        return True

    async def _stop_once_named(self, event: Event, events: AsyncIterator[Event]) -> None:
        """The first event of an answer stopped before it: stop the answer by the id it brings."""
        if isinstance(event, AnswerEvent):
            self.spawn(self.client.stop(event.id))  # left alone, it would run on for the grace period
        await _close(events)  # now, not when collected: the fetch is aborted
