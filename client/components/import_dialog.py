"""ImportDialog: asks what to do with imported chats that are here already (Keep both, Replace).

Our own modal <dialog> rather than the browser's confirm(), so it looks like the page, is read out
like the page, and a test can drive it. It shows while the app holds an import offer
(client.app.ImportOffer); each button hands its choice to `on_choice` ("keep", "replace", or
"cancel", which Escape gives too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.app import ImportOffer
from client.browser import listen


def question(titles: tuple[str, ...]) -> str:
    """What the dialog says about the chats already here."""
    if len(titles) == 1:
        return f"“{titles[0]}” is already in your chats. Keep both, or replace it with the imported one?"
    return f"{len(titles)} of these chats are already here. Keep both copies, or replace them with the imported ones?"


class ImportDialog:
    def __init__(self, dialog: Any, text: Any, on_choice: Callable[[str], None]) -> None:
        self._dialog, self._text, self._on_choice = dialog, text, on_choice
        self._proxies = [
            listen(dialog, "click", self._click),
            listen(dialog, "cancel", lambda _e: on_choice("cancel")),  # Escape
        ]

    def render(self, offer: ImportOffer | None) -> None:
        if offer is None:
            if self._dialog.open:
                self._dialog.close()
            return
        self._text.textContent = question(offer.titles)
        if not self._dialog.open:
            self._dialog.showModal()

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-choice]")
        if button:  # JS null when the click missed a button
            self._on_choice(str(button.dataset.choice))
