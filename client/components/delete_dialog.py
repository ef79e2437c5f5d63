"""DeleteDialog: our own modal <dialog> that asks before a chat is deleted, naming it.

A native modal dialog traps focus and closes on Escape; its form (method=dialog) gives the
pressed button's value as the dialog's returnValue, so Cancel, Escape and Delete are all read
in one place, when it closes. Cancel has the focus first: Enter alone never deletes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen

DELETE = "delete"


def question(title: str) -> str:
    return f"“{title}” and all its messages will be deleted. This cannot be undone."


class DeleteDialog:
    def __init__(self, dialog: Any, text: Any) -> None:
        self._dialog, self._text = dialog, text
        self._on_yes: Callable[[], None] | None = None
        self._proxies = [listen(dialog, "close", lambda _e: self._closed())]

    def ask(self, title: str, on_yes: Callable[[], None]) -> None:
        self._on_yes = on_yes
        self._text.textContent = question(title)
        self._dialog.returnValue = ""
        self._dialog.showModal()

    def _closed(self) -> None:
        on_yes, self._on_yes = self._on_yes, None
        if on_yes is not None and str(self._dialog.returnValue) == DELETE:
            on_yes()
