"""ApiKeyDialog: a native modal <dialog> asking for the API key the server wants.

It shows whenever the app has a key request (client.streams.KeyRequest) and closes when there is
none; the key typed in goes to `on_key`, which keeps it and retries the refused answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.streams import KeyRequest

ASK = "API key needed"
REFUSED = "That API key was refused"


def title_for(wrong: bool) -> str:
    """The dialog's heading: first question, or a key was sent and refused."""
    return REFUSED if wrong else ASK


class ApiKeyDialog:
    def __init__(self, dialog: Any, form: Any, title: Any, box: Any, on_key: Callable[[str], None]) -> None:
        self._dialog, self._title, self._box, self._on_key = dialog, title, box, on_key
        self._proxy = listen(form, "submit", self._submit)

    def render(self, request: KeyRequest | None) -> None:
        """Ask for a key, or close when no key is wanted."""
        if request is None:
            if self._dialog.open:
                self._dialog.close()
            return
        self._title.textContent = title_for(request.wrong)
        self._box.value = ""
        if not self._dialog.open:
            self._dialog.showModal()
        self._box.focus()

    def _submit(self, event: Any) -> None:
        event.preventDefault()
        key = str(self._box.value).strip()
        if key:
            self._on_key(key)
