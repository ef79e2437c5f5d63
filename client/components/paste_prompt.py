"""PastePrompt: a paste too long for the message box (client.draft.long_paste) is offered as a file.

The first long paste of a visit asks, in a line above the box: "Attach as a file" (it joins the
attachments, checked and counted as any file) or "Paste anyway" (it goes into the box where the
cursor was). The answer holds for the rest of the visit, so later long pastes do the same without
asking; a reload asks again. Escape drops that one paste, and leaves the question for the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.draft import long_paste

ATTACH, PASTE = "attach", "paste"


def question(chars: int) -> str:
    return f"This paste is {chars:,} characters. Attach it as a file? Your answer holds for this visit."


class PastePrompt:
    """Binds the message box and the prompt (its line, its two buttons); calls `on_attach(text)`."""

    def __init__(self, textarea: Any, box: Any, line: Any, buttons: tuple[Any, Any], on_attach: Callable[[str], None]):
        self._textarea, self._box, self._line = textarea, box, line
        self._on_attach = on_attach
        self._choice = ""  # the visit's answer: ATTACH, PASTE, or "" (not asked yet)
        self._waiting = ""  # the paste the question is about
        attach, paste = buttons
        self._proxies = [
            listen(textarea, "paste", self._paste),
            listen(attach, "click", lambda _e: self._answer(ATTACH)),
            listen(paste, "click", lambda _e: self._answer(PASTE)),
            listen(box, "keydown", self._key),
        ]
        self._attach = attach

    def _paste(self, event: Any) -> None:
        data = event.clipboardData
        if not data or not data.types.includes("text/plain"):
            return  # files and images are client.components.attachments'
        text = str(data.getData("text/plain"))
        if not long_paste(text):
            return
        event.preventDefault()  # this paste is put in place below, or attached
        if self._choice:
            self._apply(self._choice, text)
            return
        self._waiting = text
        self._line.textContent = question(len(text))
        self._box.hidden = False
        self._attach.focus()

    def _answer(self, choice: str) -> None:
        self._choice = choice
        text, self._waiting = self._waiting, ""
        self._box.hidden = True
        self._apply(choice, text)
        self._textarea.focus()

    def _key(self, event: Any) -> None:
        if event.key == "Escape":
            event.preventDefault()  # only this question ends, not an edit or an answer (client.components.type_area)
            self._waiting = ""
            self._box.hidden = True
            self._textarea.focus()

    def _apply(self, choice: str, text: str) -> None:
        if choice == ATTACH:
            self._on_attach(text)
            return
        from js import Event

        box = self._textarea
        box.setRangeText(text, box.selectionStart, box.selectionEnd, "end")
        box.dispatchEvent(Event.new("input"))  # as a paste of its own would: the count follows
