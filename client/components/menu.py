"""Menu: a small popover menu (role=menu) opened from a menu button, e.g. a chat's "⋯" or Export.

The menu is a `<div popover role="menu">` in the top layer, so no scrolling list clips it; the
browser closes it on a click outside. Its buttons (`popovertarget` naming it) are what it opens
from: the browser then leaves it open when one of them is pressed, and this class decides.
The keys are those of ARIA's menu pattern: arrows, Home and End move (wrapping), Escape and Tab
close it and go back to its button. A pick calls `on_pick(action, value)` with the item's action
and the value the menu was opened with (a chat's id), once the menu is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.roving import step

Item = tuple[str, str]  # (action, label)

ITEM = (
    "block w-full rounded-md px-3 py-1.5 text-left text-sm whitespace-nowrap hover:bg-gray-100 focus:bg-gray-100 "
    "focus-visible:outline-2 focus-visible:outline-blue-600 dark:hover:bg-gray-800 dark:focus:bg-gray-800"
)
DANGER = f"{ITEM} text-red-700 dark:text-red-300"
GAP = 4  # px between the button and the menu
MARGIN = 8  # px the menu keeps from the window's edges


Box = tuple[float, float, float, float]  # left, top, right, bottom


def place(anchor: Box, size: tuple[float, float], window: tuple[float, float]) -> tuple[float, float]:
    """(left, top) of a menu of `size` (w, h) for a button at `anchor` (left, top, right, bottom):
    under it, right edges aligned, above it where there is no room below, always inside `window` (w, h)."""
    left_edge, top_edge, right_edge, bottom_edge = anchor
    width, height = size
    win_w, win_h = window
    left = min(max(right_edge - width, MARGIN), max(win_w - width - MARGIN, MARGIN))
    top = bottom_edge + GAP
    if top + height > win_h - MARGIN and top_edge - GAP - height >= MARGIN:
        top = top_edge - GAP - height
    return left, top


class Menu:
    """Binds one popover menu element; `open(anchor, items, value)` fills and shows it under `anchor`."""

    def __init__(self, element: Any, on_pick: Callable[[str, str], None], danger: frozenset[str] = frozenset()) -> None:
        self._menu, self._on_pick, self._danger = element, on_pick, danger
        self._anchor: Any = None
        self._back: Any = None
        self._value = ""
        self._proxies = [
            listen(element, "keydown", self._key),
            listen(element, "click", self._click),
            listen(element, "toggle", self._toggled),
        ]

    @property
    def value(self) -> str:
        """What the open menu was opened with ("" while closed)."""
        return self._value if self.is_open else ""

    @property
    def is_open(self) -> bool:
        return bool(self._menu.matches(":popover-open"))

    def press(self, event: Any, anchor: Any, items: tuple[Item, ...], value: str) -> None:
        """Its button `anchor` was pressed: open the menu there, or close it if it is open there already."""
        event.preventDefault()  # the browser would toggle it; opened from another button, it stays open
        if self.is_open and self._anchor is not None and self._anchor.isSameNode(anchor):
            self.close()
        else:
            self.open(anchor, items, value)

    def open(self, anchor: Any, items: tuple[Item, ...], value: str, back: Any = None) -> None:
        """Show `items` under `anchor`; closing focuses `back` (where a key opened it from), else `anchor`."""
        from js import document, window

        if self._anchor is not None and not self._anchor.isSameNode(anchor):
            self._anchor.setAttribute("aria-expanded", "false")
        self._anchor, self._value, self._back = anchor, value, back
        buttons = []
        for action, label in items:
            button = document.createElement("button")
            button.type = "button"
            button.setAttribute("role", "menuitem")
            button.tabIndex = -1
            button.className = DANGER if action in self._danger else ITEM
            button.dataset.action = action
            button.textContent = label
            buttons.append(button)
        self._menu.replaceChildren(*buttons)
        self._menu.setAttribute("aria-label", anchor.getAttribute("aria-label") or anchor.textContent)
        if not self.is_open:
            self._menu.showPopover()
        self.reanchor(anchor)
        size = self._menu.getBoundingClientRect()
        box = anchor.getBoundingClientRect()
        edges = (box.left, box.top, box.right, box.bottom)
        left, top = place(edges, (size.width, size.height), (window.innerWidth, window.innerHeight))
        self._menu.style.left, self._menu.style.top = f"{left}px", f"{top}px"
        if buttons:
            buttons[0].focus()

    def reanchor(self, anchor: Any) -> None:
        """The open menu now belongs to `anchor` (its button was rebuilt)."""
        self._anchor = anchor
        anchor.setAttribute("aria-expanded", "true")

    def close(self, refocus: bool = True) -> None:
        back = self._back if self._back is not None and self._back.isConnected else self._anchor
        if self.is_open:
            self._menu.hidePopover()
        if back is not None and refocus and back.isConnected:
            back.focus()

    def _toggled(self, event: Any) -> None:
        if str(event.newState) == "closed" and self._anchor is not None:
            self._anchor.setAttribute("aria-expanded", "false")
            self._value = ""

    def _items(self) -> list[Any]:
        return list(self._menu.querySelectorAll("[role=menuitem]"))

    def _key(self, event: Any) -> None:
        key = str(event.key)
        if key in ("Escape", "Tab"):
            event.preventDefault()  # Escape: also not "stop the answer" (client.components.type_area)
            event.stopPropagation()
            self.close()
            return
        items = self._items()
        current = next((i for i, item in enumerate(items) if item.isSameNode(event.target)), 0)
        moved = step(key, current, len(items), wrap=True)
        if moved is not None:
            event.preventDefault()
            items[moved].focus()

    def _click(self, event: Any) -> None:
        item = event.target.closest("[role=menuitem]")
        if not item:  # JS null: between the items
            return
        value = self._value
        self.close()
        self._on_pick(str(item.dataset.action), value)
