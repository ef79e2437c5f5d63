"""ChatList: the sidebar's chats, pinned ones in a section of their own and the rest by date.

Each row is the chat's title (its full title as a tooltip where it is clipped), a dot while its
answer is on its way, and a "⋯" button opening its menu (client.components.menu): Pin, Rename,
Export, Delete. Rename turns the title into a text box in place (Enter saves, Escape cancels,
leaving it saves); Delete asks in our own dialog (client.components.delete_dialog).

The whole list is one Tab stop (a roving tabindex): Up, Down, Home and End move between chats,
Right and Left between a chat and its "⋯", Shift+F10 or the context-menu key opens its menu.
The rows are rebuilt only when what they show changes (not for each streamed token), and focus
and an open menu stay with their chat across a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

from client.app import App
from client.browser import offered
from client.components.delete_dialog import DeleteDialog
from client.components.menu import Item, Menu
from client.library import EXPORT_CHOICES, Library, matches
from client.recency import SECTIONS, section_of
from client.roving import step
from client.state import title_of

PINNED = "Pinned"
NO_MATCH = "No chats match the search."
ANSWERING = "answering"  # the streaming dot's name, read after the title

HEADING = "px-2 pt-3 pb-1 text-xs font-semibold text-gray-600 dark:text-gray-400"
ROW = (
    "group flex items-center gap-0.5 rounded-lg pr-1 hover:bg-gray-200 data-[open=true]:bg-gray-200 "
    "dark:hover:bg-gray-800 dark:data-[open=true]:bg-gray-800"
)
OPEN_BUTTON = (
    "flex min-w-0 flex-1 items-center gap-2 rounded-lg px-3 py-2 text-left text-sm focus-visible:outline-2 "
    "focus-visible:outline-blue-600"
)
TITLE = "min-w-0 flex-1 truncate"
DOT = "size-2 shrink-0 rounded-full bg-blue-600 motion-safe:animate-pulse dark:bg-blue-400"
# Out of sight until the row is hovered or focused (always there on touch screens, which cannot hover).
MENU_BUTTON = (
    "shrink-0 rounded-md px-2 py-1 text-sm leading-none text-gray-700 opacity-0 hover:bg-gray-300 "
    "hover:text-gray-900 focus-visible:opacity-100 focus-visible:outline-2 focus-visible:outline-blue-600 "
    "group-hover:opacity-100 group-focus-within:opacity-100 aria-expanded:opacity-100 pointer-coarse:opacity-100 "
    "dark:text-gray-300 dark:hover:bg-gray-700 dark:hover:text-white"
)
RENAME_INPUT = (
    "min-w-0 flex-1 rounded-lg border border-blue-500 bg-white px-2 py-1.5 text-sm focus:outline-none "
    "focus:ring-2 focus:ring-blue-500/30 dark:bg-gray-900"
)
NOTE = "px-3 py-2 text-sm text-gray-600 dark:text-gray-400"


class Row(NamedTuple):
    id: str
    title: str
    open: bool
    pinned: bool
    busy: bool


Section = tuple[str, tuple[Row, ...]]  # (heading, its rows, newest first)


def listing(
    library: Library, query: str, today: date, day_of: Callable[[float], date] = date.fromtimestamp
) -> tuple[Section, ...]:
    """The sections of the chats that match `query`: Pinned, then by the day each was last sent in
    (`day_of` a timestamp, where the user is), leaving out those with no chats."""
    grouped: dict[str, list[Row]] = {}
    for chat in library.ordered:
        if not matches(chat, query):
            continue
        pinned = chat.id in library.pinned
        label = PINNED if pinned else section_of(day_of(chat.updated) if chat.updated else None, today)
        row = Row(chat.id, title_of(chat), chat.id == library.open_id, pinned, chat.busy)
        grouped.setdefault(label, []).append(row)
    return tuple((label, tuple(grouped[label])) for label in (PINNED, *SECTIONS) if label in grouped)


def actions(row: Row) -> tuple[Item, ...]:
    """What a chat's "⋯" menu offers."""
    pin = ("unpin", "Unpin") if row.pinned else ("pin", "Pin")
    return (pin, ("rename", "Rename"), *EXPORT_CHOICES, ("delete", "Delete"))


def menu_name(title: str) -> str:
    return f"Actions for {title}"


def opens_menu(key: str, shift: bool) -> bool:
    """The keys that open a focused chat's menu, as they open a context menu elsewhere."""
    return key == "ContextMenu" or (key == "F10" and shift)


class ChatList:
    """Binds the list's container, its "⋯" menu and the Delete dialog to the app's chats.

    `on_open` runs once a chat was opened from the list (the drawer closes).
    """

    def __init__(self, container: Any, menu: Any, dialog: DeleteDialog, app: App, on_open: Callable[[], None]) -> None:
        from client.browser import listen

        self._list, self._app, self._dialog, self._on_open = container, app, dialog, on_open
        self._menu = Menu(menu, self._pick, danger=frozenset({"delete"}))
        self._menu_id = str(menu.id)
        self._shown: tuple[Section, ...] | None = None
        self._query = ""
        self._stop = ""  # the chat whose title is the list's Tab stop
        self._renaming = ""  # the chat whose title is a text box now
        self._held: Library | None = None  # the render held back while it is
        self._proxies = [
            listen(container, "click", self._click),
            listen(container, "keydown", self._key),
            listen(container, "focusin", self._focused),
            listen(container, "focusout", self._left),
        ]

    def render(self, library: Library, query: str) -> None:
        self._query = query
        if self._renaming:  # a rebuild would take the text box away mid-word
            self._held = library
            return
        wanted = listing(library, query, date.today())
        if wanted == self._shown:
            return
        self._shown = wanted
        focus = self._focus()
        self._build(wanted, bool(query.strip() and library.ordered))
        self._restore(focus)

    def _rows(self) -> tuple[Row, ...]:
        return tuple(row for _, rows in self._shown or () for row in rows)

    def _row(self, chat_id: str) -> Row | None:
        return next((row for row in self._rows() if row.id == chat_id), None)

    def _build(self, sections: tuple[Section, ...], searching: bool) -> None:
        from js import document

        rows = self._rows()
        ids = {row.id for row in rows}
        if self._stop not in ids:
            self._stop = next((row.id for row in rows if row.open), rows[0].id if rows else "")
        parts = []
        if not rows and searching:
            note = document.createElement("p")
            note.className = NOTE
            note.textContent = NO_MATCH
            parts.append(note)
        for number, (label, section_rows) in enumerate(sections):
            heading = document.createElement("h3")
            heading.id = f"chats-section-{number}"
            heading.className = HEADING
            heading.textContent = label
            items = document.createElement("ul")
            items.className = "flex flex-col gap-0.5"
            items.setAttribute("aria-labelledby", heading.id)
            items.append(*(self._item(document, row) for row in section_rows))
            parts += [heading, items]
        self._list.replaceChildren(*parts)

    def _item(self, document: Any, row: Row) -> Any:
        item = document.createElement("li")
        item.className = ROW
        item.dataset.id = row.id
        item.dataset.pinned = "true" if row.pinned else "false"
        item.dataset.open = "true" if row.open else "false"
        item.dataset.busy = "true" if row.busy else "false"
        opener = self._button(document, "open", row.id, OPEN_BUTTON)
        opener.title = row.title  # the whole title, where the row clips it
        opener.tabIndex = 0 if row.id == self._stop else -1
        if row.open:
            opener.setAttribute("aria-current", "page")
        title = document.createElement("span")
        title.className = TITLE
        title.textContent = row.title
        opener.append(title)
        if row.busy:
            dot = document.createElement("span")
            dot.className = DOT
            dot.setAttribute("role", "img")
            dot.setAttribute("aria-label", ANSWERING)
            opener.append(dot)
        menu = self._button(document, "menu", row.id, MENU_BUTTON)
        menu.tabIndex = -1
        menu.textContent = "⋯"
        menu.setAttribute("aria-label", menu_name(row.title))
        menu.setAttribute("aria-haspopup", "menu")
        menu.setAttribute("aria-expanded", "false")
        menu.setAttribute("popovertarget", self._menu_id)
        item.append(opener, menu)
        return item

    @staticmethod
    def _button(document: Any, action: str, chat_id: str, cls: str) -> Any:
        button = document.createElement("button")
        button.type = "button"
        button.className = cls
        button.dataset.action = action
        button.dataset.id = chat_id
        return button

    def _find(self, chat_id: str, action: str) -> Any:
        """The row's button for `action` (JS null if the chat is not listed)."""
        return self._list.querySelector(f'button[data-id="{chat_id}"][data-action="{action}"]')

    def _focus(self) -> tuple[str, str] | None:
        """(chat, button) that has the focus, if the focus is in the list."""
        from js import document

        active = document.activeElement
        if not active or not self._list.contains(active) or not active.getAttribute("data-id"):
            return None
        # The rename text box has no action: its chat's title takes the focus after it.
        return str(active.getAttribute("data-id")), str(active.getAttribute("data-action") or "open")

    def _restore(self, focus: tuple[str, str] | None) -> None:
        """Focus and an open menu go on with their chat in the rebuilt rows."""
        if self._menu.is_open and self._menu.value:
            anchor = self._find(self._menu.value, "menu")
            if anchor:
                self._menu.reanchor(anchor)
            else:
                self._menu.close(refocus=False)
        if focus is None:
            return
        target = self._find(*focus) or self._find(self._stop, "open")
        if target:
            target.focus()

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-action]")
        if not button:  # JS null: the click missed the buttons
            return
        chat_id, action = str(button.dataset.id), str(button.dataset.action)
        row = self._row(chat_id)
        if row is None:
            return
        if action == "open":
            self._app.open_chat(chat_id)
            self._on_open()
        elif action == "menu":
            self._menu.press(event, button, actions(row), chat_id)

    def _focused(self, event: Any) -> None:
        """The Tab stop follows the focus, so Tab comes back to the chat last visited."""
        chat_id = event.target.getAttribute("data-id")
        if not chat_id or str(chat_id) == self._stop:
            return
        previous = self._find(self._stop, "open")
        if previous:
            previous.tabIndex = -1
        self._stop = str(chat_id)
        current = self._find(self._stop, "open")
        if current:
            current.tabIndex = 0

    def _key(self, event: Any) -> None:
        target = event.target
        if str(target.tagName) == "INPUT":
            self._rename_key(event)
            return
        chat_id = str(target.getAttribute("data-id") or "")
        row = self._row(chat_id)
        if row is None:
            return
        key = str(event.key)
        if key in ("ArrowRight", "ArrowLeft"):
            event.preventDefault()
            self._find(chat_id, "menu" if key == "ArrowRight" else "open").focus()
        elif opens_menu(key, bool(event.shiftKey)):
            event.preventDefault()
            self._menu.open(self._find(chat_id, "menu"), actions(row), chat_id, back=target)
        else:
            ids = [r.id for r in self._rows()]
            moved = step(key, ids.index(chat_id), len(ids))
            if moved is not None:
                event.preventDefault()
                self._find(ids[moved], "open").focus()

    def _pick(self, action: str, chat_id: str) -> None:
        row = self._row(chat_id)
        if row is None:
            return
        if action in ("pin", "unpin"):
            self._app.pin_chat(chat_id, action == "pin")
        elif action == "rename":
            self._rename(row)
        elif action == "delete":
            self._dialog.ask(row.title, lambda: self._app.delete_chat(chat_id))
        else:
            self._app.spawn(offered(self._app.export_file(action, chat_id)))

    # Rename in place.

    def _rename(self, row: Row) -> None:
        from js import document

        opener = self._find(row.id, "open")
        if not opener:
            return
        box = document.createElement("input")
        box.type = "text"
        box.className = RENAME_INPUT
        box.value = row.title
        box.dataset.id = row.id
        box.setAttribute("aria-label", "Chat name")
        box.setAttribute("aria-describedby", "rename-hint")
        box.autocomplete = "off"
        self._renaming = row.id
        self._find(row.id, "menu").hidden = True
        opener.replaceWith(box)
        box.focus()
        box.select()

    def _rename_key(self, event: Any) -> None:
        key = str(event.key)
        if key == "Enter" and not event.isComposing:
            event.preventDefault()
            self._end_rename(save=True)
        elif key == "Escape":
            event.preventDefault()  # not "stop the answer" (client.components.type_area)
            event.stopPropagation()
            self._end_rename(save=False)

    def _left(self, event: Any) -> None:
        if self._renaming and str(event.target.tagName) == "INPUT":
            self._end_rename(save=True)  # clicking away keeps what was typed

    def _end_rename(self, save: bool) -> None:
        from js import document

        chat_id, self._renaming = self._renaming, ""
        if not chat_id:
            return
        box = self._list.querySelector("input[data-id]")
        typed = " ".join(str(box.value).split()) if box else ""
        had_focus = bool(box) and box.isSameNode(document.activeElement)
        row = self._row(chat_id)
        held, self._held = self._held, None
        self._shown = None  # the text box goes: rebuild even if nothing else changed
        if save and typed and row is not None and typed != row.title:
            self._app.rename_chat(chat_id, typed)  # renders, through the app's Effect
        if self._shown is None:
            self.render(held or self._app.library(), self._query)
        if had_focus:
            opener = self._find(chat_id, "open")
            if opener:
                opener.focus()
