"""Sidebar: the chats, pinned then newest first, each openable, pinnable, renamable and deletable;
a search box over titles and message text (Ctrl+K focuses it); New chat; Import; Export all.

The list is rebuilt only when the (id, title, open, pinned) rows change, which during a stream
they do not. Row buttons carry `data-action` and `data-id`; one delegated listener handles them.
Rename and delete use the browser's own prompt/confirm dialogs: accessible, no extra markup.
On narrow screens the sidebar is a drawer, opened by the header's Chats button and closed
again once a chat is picked, started or imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.app import App
from client.browser import download, listen, picked_file_text
from client.library import Library, matches
from client.state import title_of

ITEM = "group flex items-center gap-1 rounded-lg"
ITEM_OPEN = "group flex items-center gap-1 rounded-lg bg-gray-200 dark:bg-gray-800"
OPEN_BUTTON = (
    "min-w-0 flex-1 truncate rounded-lg px-3 py-2 text-left text-sm hover:bg-gray-200 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:hover:bg-gray-800"
)
ROW_BUTTON = (
    "rounded px-1.5 py-1 text-xs text-gray-600 hover:bg-gray-300 hover:text-gray-900 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:text-gray-300 dark:hover:bg-gray-700 dark:hover:text-white"
)


NO_MATCH = "No chats match the search."

Entry = tuple[str, str, bool, bool]


def entries(library: Library, query: str = "") -> tuple[Entry, ...]:
    """(id, title, is open, is pinned) per listed chat that matches `query`, pinned then newest first."""
    return tuple(
        (c.id, title_of(c), c.id == library.open_id, c.id in library.pinned)
        for c in library.ordered
        if matches(c, query)
    )


def is_find_key(key: str, ctrl: bool, meta: bool) -> bool:
    """Ctrl+K (Cmd+K on a Mac) focuses the search box."""
    return (ctrl or meta) and key.lower() == "k"


class Sidebar:
    """Binds the <nav> drawer and the header button that toggles it to the app's chats.

    `on_new` runs after New chat (the page focuses the message box).
    """

    def __init__(self, nav: Any, toggle: Any, app: App, on_new: Callable[[], None]) -> None:
        from js import document

        get = document.getElementById
        self._nav, self._toggle, self._app, self._on_new = nav, toggle, app, on_new
        self._list = get("chat-list")
        self._picker = get("import-file")
        self._search = get("search-chats")
        self._query = ""
        self._shown: tuple[Entry, ...] | None = None
        self._proxies = [
            listen(self._search, "input", lambda _e: self._find(str(self._search.value))),
            listen(document, "keydown", self._key),
            listen(self._list, "click", self._click),
            listen(toggle, "click", lambda _e: self._set_open(nav.dataset.open != "true")),
            listen(get("close-chats"), "click", lambda _e: self.close()),
            listen(get("new-chat"), "click", lambda _e: self._new()),
            listen(self._picker, "change", lambda _e: app.spawn(self._import())),
            listen(get("export-all"), "click", lambda _e: self._export_all()),
        ]

    def enable(self) -> None:
        """Python is up: the buttons that need it work now."""
        from js import document

        for element_id in ("new-chat", "import-file", "search-chats", "export-all"):
            document.getElementById(element_id).disabled = False

    def close(self) -> None:
        self._set_open(False)

    def _set_open(self, opened: bool) -> None:
        self._nav.dataset.open = "true" if opened else "false"
        self._toggle.setAttribute("aria-expanded", "true" if opened else "false")

    def _find(self, query: str) -> None:
        self._query = query
        self.render(self._app.library())

    def _key(self, event: Any) -> None:
        if is_find_key(str(event.key), bool(event.ctrlKey), bool(event.metaKey)):
            event.preventDefault()
            self._set_open(True)
            self._search.focus()
            self._search.select()

    def _new(self) -> None:
        self._app.new_chat()
        self.close()
        self._on_new()

    def _export_all(self) -> None:
        self._app.spawn(self._download_all())

    async def _download_all(self) -> None:
        file = await self._app.export_file("all")
        if file is not None:
            download(file.text, file.filename, file.mime)

    async def _import(self) -> None:
        from js import window

        text = await picked_file_text(self._picker)
        if text is None:
            return
        try:
            await self._app.import_chat(text)
        except ValueError as exc:
            window.alert(f"Could not import: {exc}")
            return
        self.close()

    def render(self, library: Library) -> None:
        from js import document

        wanted = entries(library, self._query)
        if wanted == self._shown:
            return
        self._shown = wanted
        self._list.replaceChildren()
        if not wanted and self._query.strip() and library.ordered:
            item = document.createElement("li")
            item.className = "px-3 py-2 text-sm text-gray-600 dark:text-gray-400"
            item.textContent = NO_MATCH
            self._list.append(item)
        for chat_id, title, is_open, pinned in wanted:
            item = document.createElement("li")
            item.className = ITEM_OPEN if is_open else ITEM
            item.dataset.id = chat_id
            item.dataset.pinned = "true" if pinned else "false"
            pin, pin_name = ("Unpin", f"Unpin chat: {title}") if pinned else ("Pin", f"Pin chat: {title}")
            item.append(
                self._button(document, "open", title, title, OPEN_BUTTON, chat_id, current=is_open),
                self._button(document, "unpin" if pinned else "pin", pin, pin_name, ROW_BUTTON, chat_id),
                self._button(document, "rename", "Rename", f"Rename chat: {title}", ROW_BUTTON, chat_id),
                self._button(document, "delete", "Delete", f"Delete chat: {title}", ROW_BUTTON, chat_id),
            )
            self._list.append(item)

    @staticmethod
    def _button(
        document: Any, action: str, label: str, name: str, cls: str, chat_id: str, current: bool = False
    ) -> Any:
        button = document.createElement("button")
        button.type = "button"
        button.className = cls
        button.textContent = label
        button.dataset.action = action
        button.dataset.id = chat_id
        if name != label:
            button.setAttribute("aria-label", name)
        if current:
            button.setAttribute("aria-current", "page")
        return button

    def _click(self, event: Any) -> None:
        from js import window

        button = event.target.closest("button[data-action]")
        if not button:  # JS null: the click missed the buttons
            return
        chat_id, action = str(button.dataset.id), str(button.dataset.action)
        title = next((t for i, t, _, _ in self._shown or () if i == chat_id), "")
        if action in ("pin", "unpin"):
            self._app.pin_chat(chat_id, action == "pin")
        elif action == "open":
            self._app.open_chat(chat_id)
            self.close()
        elif action == "rename":
            new = window.prompt("New name for this chat:", title)
            if new and str(new).strip():  # Cancel gives JS null (jsnull in Pyodide 314, not None)
                self._app.rename_chat(chat_id, str(new))
        elif action == "delete" and window.confirm(f"Delete the chat “{title}”? This cannot be undone."):
            self._app.delete_chat(chat_id)
