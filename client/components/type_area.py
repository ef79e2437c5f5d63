"""TypeArea: the message box and its Send button, which becomes Stop while an answer streams.

Enter sends, Shift+Enter inserts a newline (and Enter while an input method is composing
is left alone); Escape anywhere on the page stops a streaming answer (or cancels an edit).
After sending, the box is cleared and focused again. While an answer streams, Enter is
ignored and the button stops the answer instead of sending, so two answers can never
interleave; the box itself stays editable so the next message can be drafted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SEND_CLASS = (
    "h-11 rounded-xl bg-blue-600 px-5 font-medium text-white shadow-sm hover:bg-blue-700 focus-visible:outline-2 "
    "focus-visible:outline-offset-2 focus-visible:outline-blue-600 disabled:cursor-not-allowed disabled:opacity-50 "
    "max-sm:ml-auto"  # on a phone the box has a row of its own, and the buttons share the one below
)
STOP_CLASS = (
    "h-11 rounded-xl bg-red-700 px-5 font-medium text-white shadow-sm hover:bg-red-800 focus-visible:outline-2 "
    "focus-visible:outline-offset-2 focus-visible:outline-red-700 max-sm:ml-auto"
)


def sends_on_key(key: str, shift: bool, composing: bool) -> bool:
    """Whether a keydown in the message box means "send"."""
    return key == "Enter" and not shift and not composing


class TypeArea:
    """Binds a form, its textarea and its button; calls on_send(text) per message (False: not sent,
    so the text goes back in the box), on_stop() for Stop."""

    def __init__(
        self,
        form: Any,
        textarea: Any,
        button: Any,
        on_send: Callable[[str], bool],
        on_stop: Callable[[], None],
        has_files: Callable[[], bool] = lambda: False,
    ) -> None:
        """`has_files()`: files are attached, so a message with no typed text may be sent."""
        from js import document
        from pyodide.ffi import create_proxy

        self._form = form
        self._textarea = textarea
        self._button = button
        self._on_send = on_send
        self._on_stop = on_stop
        self._has_files = has_files
        self._busy = False
        # Proxies are kept on self: JS holds the listeners for the page's lifetime.
        self._on_submit = create_proxy(self._submit)
        self._on_keydown = create_proxy(self._keydown)
        self._on_click = create_proxy(self._click)
        self._on_escape = create_proxy(self._escape)
        form.addEventListener("submit", self._on_submit)
        textarea.addEventListener("keydown", self._on_keydown)
        button.addEventListener("click", self._on_click)
        document.addEventListener("keydown", self._on_escape)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        # One button, two jobs: its type changes so that Stop never submits the form.
        self._button.type = "button" if busy else "submit"
        self._button.textContent = "Stop" if busy else "Send"
        self._button.className = STOP_CLASS if busy else SEND_CLASS
        self._button.disabled = False
        self._form.setAttribute("aria-busy", "true" if busy else "false")

    def enable(self) -> None:
        """Python is up: let the user type and send."""
        self._textarea.disabled = False
        self.set_busy(self._busy)
        self._textarea.focus()

    def focus(self) -> None:
        self._textarea.focus()

    def fill(self, text: str) -> None:
        self._textarea.value = text
        self._textarea.focus()

    def _keydown(self, event: Any) -> None:
        if sends_on_key(event.key, bool(event.shiftKey), bool(event.isComposing)):
            event.preventDefault()
            self._send()

    def _escape(self, event: Any) -> None:
        if event.key == "Escape" and not event.defaultPrevented:
            # An open <dialog> handles Escape itself (it closes); leave that alone.
            from js import document

            if not document.querySelector("dialog[open]"):  # JS null is jsnull here, not None
                self._on_stop()

    def _click(self, event: Any) -> None:
        if self._busy:
            event.preventDefault()
            self._on_stop()

    def _submit(self, event: Any) -> None:
        event.preventDefault()  # no page reload
        self._send()

    def _send(self) -> None:
        text = self._textarea.value
        if self._busy or not (text.strip() or self._has_files()):
            return
        self._textarea.value = ""
        self._textarea.focus()
        if not self._on_send(text):
            self._textarea.value = text
