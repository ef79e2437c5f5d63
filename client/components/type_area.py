"""TypeArea: the message box and its Send button.

Enter sends, Shift+Enter inserts a newline (and Enter while an input method is composing
is left alone). After sending, the box is cleared and focused again. While an answer
streams, Send is disabled and Enter is ignored, so two answers can never interleave;
the box itself stays editable so the next message can be drafted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def sends_on_key(key: str, shift: bool, composing: bool) -> bool:
    """Whether a keydown in the message box means "send"."""
    return key == "Enter" and not shift and not composing


class TypeArea:
    """Binds a form, its textarea and its submit button; calls on_send(text) per message."""

    def __init__(self, form: Any, textarea: Any, button: Any, on_send: Callable[[str], None]) -> None:
        from pyodide.ffi import create_proxy

        self._form = form
        self._textarea = textarea
        self._button = button
        self._on_send = on_send
        self._busy = False
        # Proxies are kept on self: JS holds the listeners for the page's lifetime.
        self._on_submit = create_proxy(self._submit)
        self._on_keydown = create_proxy(self._keydown)
        form.addEventListener("submit", self._on_submit)
        textarea.addEventListener("keydown", self._on_keydown)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._button.disabled = busy
        self._form.setAttribute("aria-busy", "true" if busy else "false")

    def enable(self) -> None:
        """Python is up: let the user type and send."""
        self._textarea.disabled = False
        self.set_busy(self._busy)
        self._textarea.focus()

    def _keydown(self, event: Any) -> None:
        if sends_on_key(event.key, bool(event.shiftKey), bool(event.isComposing)):
            event.preventDefault()
            self._send()

    def _submit(self, event: Any) -> None:
        event.preventDefault()  # no page reload
        self._send()

    def _send(self) -> None:
        text = self._textarea.value
        if self._busy or not text.strip():
            return
        self._textarea.value = ""
        self._textarea.focus()
        self._on_send(text)
