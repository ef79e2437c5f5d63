"""Entry point of the browser app (PyScript runs this file on the page's main thread).

The whole chat lives in one reaktiv Signal, `conversation`. The components only render
it (through Effects) or change it (through the pure transitions in client.state); the
stream from the server is folded into it one event at a time.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from reaktiv import Effect, Signal

from client.rpc import converse
from client.state import Chat, apply_event, fail, request_for, submit

conversation: Signal[Chat] = Signal(Chat())

# Tasks and effects must stay referenced: asyncio and reaktiv only hold them weakly.
_tasks: set[asyncio.Task[None]] = set()
_alive: list[Any] = []


async def answer() -> None:
    """Stream the model's answer to the last user message into the conversation."""
    try:
        async for event in converse(request_for(conversation())):
            conversation.set(apply_event(conversation(), event))
    except Exception as exc:  # a bug, not a server error: still never leave the chat stuck
        conversation.set(fail(conversation(), f"Error in the page: {exc!r}"))
        raise


def send(text: str) -> None:
    before = conversation()
    after = submit(before, text)
    if after is before:  # blank, or an answer is still streaming
        return
    conversation.set(after)
    task = asyncio.ensure_future(answer())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def start() -> None:
    """Bind the page to the conversation and tell it that Python is ready."""
    from js import document

    from client import devreload
    from client.components.chat_area import ChatArea
    from client.components.type_area import TypeArea

    chat_area = ChatArea(document.getElementById("chat"), document.getElementById("messages"))
    type_area = TypeArea(
        document.getElementById("type-area"),
        document.getElementById("prompt"),
        document.getElementById("send"),
        on_send=send,
    )
    intro = document.getElementById("intro")

    def render() -> None:
        chat = conversation()
        chat_area.render(chat)
        intro.hidden = bool(chat.turns)

    _alive.extend(
        [
            Effect(render),
            Effect(lambda: type_area.set_busy(conversation().busy)),
        ]
    )
    document.getElementById("loading").remove()
    type_area.enable()
    document.body.dataset.ready = "true"  # for people and tests: Python is up
    devreload.start(_tasks)


if sys.platform == "emscripten":
    start()
