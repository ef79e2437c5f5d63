"""ChatArea: renders the chat, user bubbles right and blue, model bubbles left and grey.

Rendering is keyed by position: one row per turn is created once and afterwards only its
text, classes and note are updated, so a streamed token touches one text node instead of
rebuilding the list. Message text is always set through `textContent` (never as HTML),
and `whitespace-pre-wrap` keeps its line breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.state import Chat, Turn

PLACEHOLDER = "..."  # shown in the model's bubble until its first token arrives

# Full class strings (not built from pieces) so Tailwind's scanner finds them in this file.
ROW_USER = "flex justify-end"
ROW_MODEL = "flex justify-start"
COL_USER = "flex max-w-[85%] flex-col items-end"
COL_MODEL = "flex max-w-[85%] flex-col items-start"
BUBBLE_BASE = "whitespace-pre-wrap break-words rounded-2xl px-4 py-2 leading-relaxed shadow-sm"
BUBBLE_USER = "rounded-br-md bg-blue-600 text-white"
BUBBLE_MODEL = "rounded-bl-md bg-gray-200 text-gray-900 dark:bg-gray-800 dark:text-gray-100"
BUBBLE_PENDING = "animate-pulse text-gray-500 dark:text-gray-400"
BUBBLE_ERROR = (
    "rounded-bl-md border border-red-300 bg-red-50 text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200"
)
NOTE = "mt-1 px-2 text-xs text-gray-500 dark:text-gray-400"


@dataclass(frozen=True)
class BubbleView:
    """What one turn looks like; computed without a DOM so it can be tested anywhere."""

    role: str
    status: str
    row_class: str
    column_class: str
    bubble_class: str
    text: str
    note: str


def view_of(turn: Turn) -> BubbleView:
    if turn.user:
        return BubbleView("user", turn.status, ROW_USER, COL_USER, f"{BUBBLE_BASE} {BUBBLE_USER}", turn.text, "")
    if turn.status == "error":
        look = BUBBLE_ERROR
    elif turn.status == "pending":
        look = f"{BUBBLE_MODEL} {BUBBLE_PENDING}"
    else:
        look = BUBBLE_MODEL
    text = PLACEHOLDER if turn.status == "pending" and not turn.text else turn.text
    return BubbleView("model", turn.status, ROW_MODEL, COL_MODEL, f"{BUBBLE_BASE} {look}", text, turn.note)


class ChatArea:
    """Binds a scroll container and the list inside it (the aria-live region) to a Chat."""

    def __init__(self, scroller: Any, messages: Any) -> None:
        self._scroller = scroller
        self._messages = messages
        self._rows: list[tuple[Any, Any, Any, Any]] = []  # (row, column, bubble, note)
        self._shown: list[BubbleView] = []

    def render(self, chat: Chat) -> None:
        near_bottom = self._near_bottom()
        grew = len(chat.turns) > len(self._rows)
        changed = False
        for index, turn in enumerate(chat.turns):
            view = view_of(turn)
            if index == len(self._rows):
                self._rows.append(self._new_row())
                self._shown.append(None)  # type: ignore[arg-type]
            if self._shown[index] != view:
                self._update(self._rows[index], view)
                self._shown[index] = view
                changed = True
        while len(self._rows) > len(chat.turns):
            self._rows.pop()[0].remove()
            self._shown.pop()
        # Follow the newest text unless the reader scrolled up to read older messages;
        # a newly sent message always brings the view down.
        if changed and (grew or near_bottom):
            self._scroller.scrollTop = self._scroller.scrollHeight

    def _near_bottom(self) -> bool:
        s = self._scroller
        return bool(s.scrollHeight - s.scrollTop - s.clientHeight < 80)

    def _new_row(self) -> tuple[Any, Any, Any, Any]:
        from js import document

        row = document.createElement("li")
        column = document.createElement("div")
        bubble = document.createElement("div")
        note = document.createElement("div")
        column.append(bubble, note)
        row.append(column)
        self._messages.append(row)
        return row, column, bubble, note

    @staticmethod
    def _update(parts: tuple[Any, Any, Any, Any], view: BubbleView) -> None:
        row, column, bubble, note = parts
        row.className = view.row_class
        row.dataset.role = view.role
        row.dataset.status = view.status
        column.className = view.column_class
        bubble.className = view.bubble_class
        bubble.textContent = view.text
        note.className = NOTE
        note.textContent = view.note
        note.hidden = not view.note
