"""TypeArea: the message box and its Send button, which becomes Stop while an answer streams.

Enter sends, Shift+Enter inserts a newline (and Enter while an input method is composing
is left alone); Escape anywhere on the page stops a streaming answer (or cancels an edit).
After sending, the box is cleared and focused again. While an answer streams, Enter sends
nothing: the note by the box says to wait or stop (client.draft.WAIT), and the text stays, and
the button stops the answer instead of sending, so two answers can never interleave; the box
itself stays editable so the next message can be drafted. Every change of the text is handed to
`on_input` (the live token count), and the count's line is shown here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from client.draft import COUNTING, WAIT, CountLine

SEND_CLASS = (
    "h-11 shrink-0 rounded-xl bg-blue-600 px-5 font-medium text-white shadow-sm hover:bg-blue-700 "
    "focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-blue-600 disabled:cursor-not-allowed "
    "disabled:opacity-50 max-sm:w-11 max-sm:px-0"  # on a phone: a square icon button
)
# The Send and Stop icons (24-unit boxes): an arrow up, a square. On a phone the button is the icon alone.
SEND_ICON = "M12 19V5M5 12l7-7 7 7"
STOP_ICON = "M7 7h10v10H7z"
COUNT = "ml-auto mt-1 text-xs tabular-nums text-gray-600 dark:text-gray-400"
COUNT_OVER = "ml-auto mt-1 text-xs tabular-nums font-medium text-red-700 dark:text-red-300"
STOP_CLASS = (
    "h-11 shrink-0 rounded-xl bg-red-700 px-5 font-medium text-white shadow-sm hover:bg-red-800 "
    "focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-700 max-sm:w-11 max-sm:px-0"
)


def sends_on_key(key: str, shift: bool, composing: bool) -> bool:
    """Whether a keydown in the message box means "send"."""
    return key == "Enter" and not shift and not composing


class TypeArea:
    """Binds a form, its textarea, its button and the lines under the box (the note, the count);
    calls on_send(text) per message (False: not sent, so the text goes back in the box), on_stop()
    for Stop, on_input(text) whenever the text changes."""

    def __init__(
        self,
        form: Any,
        textarea: Any,
        button: Any,
        on_send: Callable[[str], bool],
        on_stop: Callable[[], None],
        has_files: Callable[[], bool] = lambda: False,
        lines: tuple[Any, Any] | None = None,
        on_input: Callable[[str], None] = lambda _text: None,
        count_first: Callable[[str], Awaitable[None] | None] = lambda _text: None,
    ) -> None:
        """`has_files()`: files are attached, so a message with no typed text may be sent;
        `lines`: the polite note (Enter while busy) and the token count's line; `count_first(text)`:
        the count to wait for before sending `text` (None: send now)."""
        from js import document
        from pyodide.ffi import create_proxy

        self._form = form
        self._textarea = textarea
        self._button = button
        self._on_send = on_send
        self._on_stop = on_stop
        self._has_files = has_files
        self._note: Any = lines[0] if lines is not None else None
        self._count: Any = lines[1] if lines is not None else None
        self._on_input = on_input
        self._count_first = count_first
        self._held: asyncio.Task[None] | None = None  # a send waiting for its count
        self._busy = False
        self._line = CountLine()
        # Proxies are kept on self: JS holds the listeners for the page's lifetime.
        self._on_submit = create_proxy(self._submit)
        self._on_keydown = create_proxy(self._keydown)
        self._on_click = create_proxy(self._click)
        self._on_escape = create_proxy(self._escape)
        form.addEventListener("submit", self._on_submit)
        textarea.addEventListener("keydown", self._on_keydown)
        button.addEventListener("click", self._on_click)
        document.addEventListener("keydown", self._on_escape)
        self._on_typed = create_proxy(lambda _e: self._on_input(str(textarea.value)))
        textarea.addEventListener("input", self._on_typed)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        # One button, two jobs: its type changes so that Stop never submits the form.
        self._button.type = "button" if busy else "submit"
        label = "Stop" if busy else "Send"
        self._button.querySelector("[data-part=label]").textContent = label
        self._button.setAttribute("aria-label", label)
        self._button.querySelector("path").setAttribute("d", STOP_ICON if busy else SEND_ICON)
        self._button.className = STOP_CLASS if busy else SEND_CLASS
        self._button.disabled = False
        self._form.setAttribute("aria-busy", "true" if busy else "false")
        if not busy:
            self._say("")  # the answer ended: Enter sends again

    def show_count(self, line: CountLine) -> None:
        """The draft's token count (client.draft.count_line), or nothing while far from the limit."""
        if self._count is not None and line != self._line:
            self._line = line
            self._count.textContent = line.text
            self._count.className = COUNT_OVER if line.over else COUNT
            self._count.hidden = not line.text

    def clear(self) -> None:
        """Empty the box (an edit ended unsent: its text must not go out as a new message)."""
        if self._textarea.value:
            self._textarea.value = ""
            self._on_input("")

    async def _send_counted(self, counting: Awaitable[None]) -> None:
        """Send once the count is in (it may refuse the message); a key typed meanwhile cancels it."""
        try:
            await counting
        except asyncio.CancelledError:
            self._say("")
            return
        self._send()

    def _say(self, note: str) -> None:
        if self._note is not None and self._note.textContent != note:
            self._note.textContent = note

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
        self._on_input(text)

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
        if not (text.strip() or self._has_files()):
            return
        if self._busy:
            self._say(WAIT)
            return
        counting = self._count_first(text)
        if counting is not None:
            self._say(COUNTING)
            self._held = asyncio.ensure_future(self._send_counted(counting))
            return
        self._say("")
        self._textarea.value = ""
        self._textarea.focus()
        if not self._on_send(text):
            self._textarea.value = text
        else:
            self._on_input("")  # the box is empty now: a count of the text sent, still to come, is not wanted
