"""Sidebar: the chats, newest first, each openable, renamable and deletable; a New chat button.

The list is rebuilt only when the (id, title, open) triples change, which during a stream
they do not. Row buttons carry `data-action` and `data-id`; one delegated listener handles them.
Rename and delete use the browser's own prompt/confirm dialogs: accessible, no extra markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.library import Library
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


def entries(library: Library) -> tuple[tuple[str, str, bool], ...]:
    """(id, title, is open) per listed chat, newest first."""
    return tuple((c.id, title_of(c), c.id == library.open_id) for c in library.ordered)


class Sidebar:
    def __init__(
        self,
        listing: Any,
        on_open: Callable[[str], None],
        on_rename: Callable[[str, str], None],
        on_delete: Callable[[str], None],
    ) -> None:
        from pyodide.ffi import create_proxy

        self._list = listing
        self._on_open, self._on_rename, self._on_delete = on_open, on_rename, on_delete
        self._shown: tuple[tuple[str, str, bool], ...] | None = None
        self._on_click = create_proxy(self._click)
        listing.addEventListener("click", self._on_click)

    def render(self, library: Library) -> None:
        from js import document

        wanted = entries(library)
        if wanted == self._shown:
            return
        self._shown = wanted
        self._list.replaceChildren()
        for chat_id, title, is_open in wanted:
            item = document.createElement("li")
            item.className = ITEM_OPEN if is_open else ITEM
            item.dataset.id = chat_id
            item.append(
                self._button(document, "open", title, title, OPEN_BUTTON, chat_id, current=is_open),
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
        title = next((t for i, t, _ in self._shown or () if i == chat_id), "")
        if action == "open":
            self._on_open(chat_id)
        elif action == "rename":
            new = window.prompt("New name for this chat:", title)
            if new is not None and str(new).strip():
                self._on_rename(chat_id, str(new))
        elif action == "delete" and window.confirm(f"Delete the chat “{title}”? This cannot be undone."):
            self._on_delete(chat_id)
