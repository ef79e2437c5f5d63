"""Entry point of the browser app (PyScript runs this file on the page's main thread).

All chats live in one reaktiv Signal, `library`; settings in another. Components only render
them (through Effects) or change them (through the pure transitions in client.state and
client.library); each answer's stream is folded into *its* chat by id, so switching chats
mid-answer is harmless. Saving to IndexedDB is an Effect too (client.storage), not a second
source of truth.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from reaktiv import Effect, Signal

from client import library as lib
from client import rpc, settings
from client.markdown import WHEELS as MARKDOWN_WHEELS
from client.protocol import ErrorEvent, SamplingParams
from client.state import Chat, apply_event, edit, fail, regenerate, request_for, stop, submit

library: Signal[lib.Library] = Signal(lib.Library())
params: Signal[SamplingParams] = Signal(SamplingParams())
editing: Signal[int | None] = Signal(None)  # index of the user message being edited
rich: Signal[bool] = Signal(False)  # Markdown renderer loaded
API_KEY = "api_key"

# Tasks, effects and proxies must stay referenced: asyncio, reaktiv and JS hold them weakly.
_streams: dict[str, asyncio.Task[None]] = {}  # chat id -> its answer being streamed
_tasks: set[asyncio.Task[Any]] = set()
_alive: list[Any] = []
_page: dict[str, Any] = {}  # DOM-bound helpers created by start()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def change(chat_id: str, transition: Any) -> None:
    library.set(lib.update(library(), chat_id, transition))


def current() -> Chat:
    return library().current


async def answer(chat_id: str) -> None:
    """Stream the model's answer to the last user message of chat `chat_id` into it."""
    chat = lib.find(library(), chat_id)
    if chat is None:
        return
    try:
        async for event in rpc.converse(request_for(chat, params())):
            if isinstance(event, ErrorEvent) and event.type == rpc.UNAUTHORIZED:
                change(chat_id, lambda c: fail(c, "This server needs an API key."))
                ask_for_key(chat_id, wrong=bool(rpc.api_key))
                return
            if isinstance(event, ErrorEvent) and event.type == "network":
                show_banner("Cannot reach the server.")
            change(chat_id, lambda c, e=event: apply_event(c, e))
    except asyncio.CancelledError:  # Stop: rpc has aborted the request, the server cancels
        change(chat_id, stop)
        raise
    except Exception as exc:  # a bug, not a server error: still never leave the chat stuck
        message = f"Error in the page: {exc!r}"
        change(chat_id, lambda c: fail(c, message))
        raise
    finally:
        if _streams.get(chat_id) is asyncio.current_task():  # not a newer answer's task
            del _streams[chat_id]


def start_answer(chat_id: str) -> None:
    _streams[chat_id] = spawn(answer(chat_id))


def ensure_open_chat() -> str:
    if not library().open_id:
        library.set(lib.new_chat(library(), uuid.uuid4().hex))
    return library().open_id


def send(text: str) -> None:
    chat_id = ensure_open_chat()
    index = editing()
    before = current()
    now = time.time()
    after = submit(before, text, now) if index is None else edit(before, index, text, now)
    if after is before:  # blank, or an answer is still streaming
        return
    editing.set(None)
    change(chat_id, lambda _c: after)
    start_answer(chat_id)


def stop_answer() -> None:
    task = _streams.get(library().open_id)
    if task is not None:
        task.cancel()
    elif editing() is not None:
        editing.set(None)


def on_message_action(event: Any) -> None:
    button = event.target.closest("button[data-action]")
    if not button:  # JS null (jsnull in Pyodide 314, not None) when the click missed a button
        return
    action = str(button.dataset.action)
    row = button.closest("li[data-index]")
    chat = current()
    if action == "copy-code":
        copy(button, str(button.closest(".code-block").querySelector("code").textContent))
        return
    index = int(row.dataset.index)
    turn = chat.turns[index]
    if action == "copy":
        copy(button, turn.text)
    elif action == "regenerate":
        after = regenerate(chat, time.time())
        if after is not chat:
            change(chat.id, lambda _c: after)
            start_answer(chat.id)
    elif action == "edit":
        editing.set(index)
        _page["type_area"].fill(turn.text)


def copy(button: Any, text: str) -> None:
    from js import navigator

    async def run() -> None:
        label = button.textContent
        await navigator.clipboard.writeText(text)
        button.textContent = "Copied"
        await asyncio.sleep(1.5)
        button.textContent = label

    spawn(run())


# Banner, health and API key.


def show_banner(text: str | None) -> None:
    from js import document

    banner = document.getElementById("banner")
    banner.hidden = text is None
    if text is not None:
        document.getElementById("banner-text").textContent = text


async def check_health() -> None:
    from js import fetch

    try:
        response = await fetch("/health", to_init({"cache": "no-store"}))
        ok = bool(response.ok)
    except Exception:
        ok = False
    show_banner(None if ok else "Cannot reach the server. Is `make run` running?")


def to_init(options: dict[str, Any]) -> Any:
    from js import Object
    from pyodide.ffi import to_js

    return to_js(options, dict_converter=Object.fromEntries)


def ask_for_key(retry_chat: str, wrong: bool) -> None:
    from js import document

    _page["key_retry"] = retry_chat
    document.getElementById("key-title").textContent = "That API key was refused" if wrong else "API key needed"
    box = document.getElementById("api-key")
    box.value = ""
    document.getElementById("key-dialog").showModal()
    box.focus()


def on_key_submit(event: Any) -> None:
    from js import document

    event.preventDefault()
    key = str(document.getElementById("api-key").value).strip()
    if not key:
        return
    rpc.set_api_key(key)
    store = _page["store"]
    store[API_KEY] = key
    spawn(store.sync())
    document.getElementById("key-dialog").close()
    chat_id = _page.pop("key_retry", "")
    chat = lib.find(library(), chat_id)
    if chat is not None:
        after = regenerate(chat, time.time())
        if after is not chat:
            change(chat_id, lambda _c: after)
            start_answer(chat_id)


# Chats: new, open, rename, delete, export, import.


def new_chat(_event: Any = None) -> None:
    editing.set(None)
    library.set(lib.new_chat(library(), uuid.uuid4().hex))
    close_sidebar()
    _page["prompt"].focus()


def open_chat(chat_id: str) -> None:
    editing.set(None)
    library.set(lib.select(library(), chat_id))
    close_sidebar()


def close_sidebar() -> None:
    from js import document

    document.getElementById("sidebar").dataset.open = "false"
    document.getElementById("toggle-chats").setAttribute("aria-expanded", "false")


def toggle_sidebar(_event: Any) -> None:
    from js import document

    nav = document.getElementById("sidebar")
    opened = nav.dataset.open != "true"
    nav.dataset.open = "true" if opened else "false"
    document.getElementById("toggle-chats").setAttribute("aria-expanded", "true" if opened else "false")


def download(text: str, filename: str, mime: str) -> None:
    from js import URL, Blob, document
    from pyodide.ffi import to_js

    blob = Blob.new(to_js([text]), to_init({"type": mime}))
    link = document.createElement("a")
    link.href = URL.createObjectURL(blob)
    link.download = filename
    link.click()
    URL.revokeObjectURL(link.href)


def export(kind: str) -> None:
    chat = current()
    if not chat.turns:
        return
    if kind == "md":
        download(lib.export_markdown(chat), lib.filename_for(chat, "md"), "text/markdown")
    else:
        download(lib.export_json(chat), lib.filename_for(chat, "json"), "application/json")


async def import_file(event: Any) -> None:
    from js import window

    files = event.target.files
    if not files.length:
        return
    text = await files.item(0).text()
    event.target.value = ""
    try:
        chat = lib.import_json(str(text), uuid.uuid4().hex, time.time())
    except ValueError as exc:
        window.alert(f"Could not import: {exc}")
        return
    library.set(lib.Library(chats=lib.select(library(), library().open_id).chats + (chat,), open_id=chat.id))
    close_sidebar()


async def load_markdown() -> None:
    """The Markdown parser is loaded after the page is ready: answers show as plain text until then."""
    from js import document, location
    from pyodide.ffi import to_js
    from pyodide_js import loadPackage

    try:
        await loadPackage(to_js([str(location.origin) + url for url in MARKDOWN_WHEELS]))
        from client import markdown

        markdown.render("warm *up*")  # build the parser now, not on the first answer
        rich.set(True)
        document.body.dataset.markdown = "ready"  # for tests: answers now render as Markdown
    except Exception as exc:  # plain text is a fine fallback
        print(f"Markdown unavailable: {exc!r}")


async def start() -> None:
    """Load what was saved, bind the page to the signals, and tell it that Python is ready."""
    from js import document
    from pyodide.ffi import create_proxy

    from client import devreload, storage
    from client.components.chat_area import ChatArea
    from client.components.settings_panel import SettingsPanel
    from client.components.sidebar import Sidebar
    from client.components.type_area import TypeArea

    store = await storage.open_store()
    _page["store"] = store
    library.set(lib.from_records(dict(store)))
    params.set(settings.load(store.get(settings.SETTINGS_KEY)))
    rpc.set_api_key(str(store.get(API_KEY) or ""))

    get = document.getElementById
    chat_area = ChatArea(get("chat"), get("messages"))
    type_area = TypeArea(get("type-area"), get("prompt"), get("send"), on_send=send, on_stop=stop_answer)
    sidebar = Sidebar(
        get("chat-list"),
        on_open=open_chat,
        on_rename=lambda i, t: library.set(lib.rename(library(), i, t)),
        on_delete=lambda i: library.set(lib.delete(library(), i)),
    )

    def save_params(value: SamplingParams) -> None:
        params.set(value)
        store[settings.SETTINGS_KEY] = settings.dump(value)
        spawn(store.sync())

    panel = SettingsPanel(get("settings"), get("settings-form"), get("settings-fields"), on_save=save_params)
    _page.update(type_area=type_area, prompt=get("prompt"))
    saver = storage.Saver(store, lambda: lib.records(library()))

    def render() -> None:
        lib_now = library()
        chat = lib_now.current
        chat_area.render(chat, rich())
        get("intro").hidden = bool(chat.turns)
        get("export-md").disabled = get("export-json").disabled = not chat.turns
        sidebar.render(lib_now)

    def show_editing() -> None:
        get("editing").hidden = editing() is None

    def persist() -> None:
        saver.changed(streaming=any(c.busy for c in library().chats))

    handlers = {
        "messages": ("click", on_message_action),
        "new-chat": ("click", new_chat),
        "toggle-chats": ("click", toggle_sidebar),
        "close-chats": ("click", lambda _e: close_sidebar()),
        "open-settings": ("click", lambda _e: panel.open(params())),
        "export-md": ("click", lambda _e: export("md")),
        "export-json": ("click", lambda _e: export("json")),
        "import-file": ("change", lambda e: spawn(import_file(e))),
        "banner-retry": ("click", lambda _e: spawn(check_health())),
        "key-form": ("submit", on_key_submit),
        "cancel-edit": ("click", lambda _e: editing.set(None)),
    }
    for element_id, (kind, handler) in handlers.items():
        proxy = create_proxy(handler)
        _alive.append(proxy)
        get(element_id).addEventListener(kind, proxy)

    _alive.extend(
        [
            Effect(render),
            Effect(lambda: type_area.set_busy(current().busy)),
            Effect(show_editing),
            Effect(persist),
        ]
    )
    get("loading").remove()
    for element_id in ("new-chat", "open-settings", "import-file"):
        get(element_id).disabled = False
    type_area.enable()
    document.body.dataset.ready = "true"  # for people and tests: Python is up
    spawn(check_health())
    spawn(load_markdown())
    devreload.start(_tasks)


if sys.platform == "emscripten":
    spawn(start())
