"""Sidebar: the chats (client.components.chat_list), a search box over their titles and message
text (Ctrl+K focuses it), New chat, Import and Export all.

On narrow screens the sidebar is a drawer, opened by the header's Chats button and closed
again once a chat is picked, started or imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.app import App
from client.browser import listen, offered, picked_file_text
from client.components.chat_list import ChatList
from client.components.delete_dialog import DeleteDialog
from client.library import Library


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
        self._picker = get("import-file")
        self._search = get("search-chats")
        self._query = ""
        dialog = DeleteDialog(get("delete-dialog"), get("delete-text"))
        self._chats = ChatList(get("chat-list"), get("chat-menu"), dialog, app, on_open=self.close)
        self._proxies = [
            listen(self._search, "input", lambda _e: self._find(str(self._search.value))),
            listen(document, "keydown", self._key),
            listen(toggle, "click", lambda _e: self._set_open(nav.dataset.open != "true")),
            listen(get("close-chats"), "click", lambda _e: self.close()),
            listen(get("new-chat"), "click", lambda _e: self._new()),
            listen(self._picker, "change", lambda _e: app.spawn(self._import())),
            listen(get("export-all"), "click", lambda _e: app.spawn(offered(app.export_file("all")))),
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

    async def _import(self) -> None:
        text = await picked_file_text(self._picker)
        if text is not None and await self._app.import_chat(text):  # else the note under Import says why
            self.close()

    def render(self, library: Library) -> None:
        self._chats.render(library, self._query)
