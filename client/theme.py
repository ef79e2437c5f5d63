"""The page's colour theme: the system's (the default), light, or dark, chosen in Settings.

The choice is kept in the browser's localStorage under `KEY`, not with the chats (IndexedDB), so
that client/theme.js can read it synchronously and set `<html data-theme>` before the first paint:
a page in the dark theme never flashes light while Python starts. The CSS's `dark:` variant reads
that attribute (style/input.css). The choice applies at once, without the dialog's Save.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from client.browser import listen

KEY = "snake_llama.theme"  # client/theme.js reads the same key
SYSTEM, LIGHT, DARK = "system", "light", "dark"
THEMES = (SYSTEM, LIGHT, DARK)


def chosen(stored: str | None) -> str:
    """The theme a stored value names; anything else (nothing stored, an unknown word) is the system's."""
    return stored if stored in THEMES else SYSTEM


def attribute(theme: str) -> str | None:
    """`<html data-theme>` for a theme; None: no attribute, the system setting decides."""
    return theme if theme in (LIGHT, DARK) else None


class ThemePicker:
    """The theme's radio buttons (`name="theme"`, one per value of THEMES): checked as stored, and
    each change applied to the page and stored at once."""

    def __init__(self, document: Any, window: Any) -> None:
        self._root = document.documentElement
        self._storage = window.localStorage
        self._radios = {theme: document.getElementById(f"theme-{theme}") for theme in THEMES}
        self._radios[chosen(self._read())].checked = True
        self._proxies = [listen(radio, "change", self._changed) for radio in self._radios.values()]

    def _read(self) -> str | None:
        try:
            value = self._storage.getItem(KEY)
        except Exception:  # a JsException: storage switched off in this browser
            return None
        return None if value is None else str(value)

    def _changed(self, event: Any) -> None:
        theme = chosen(str(event.target.value))
        value = attribute(theme)
        if value is None:
            self._root.removeAttribute("data-theme")
        else:
            self._root.dataset.theme = value
        with suppress(Exception):  # a JsException: storage off, and the theme holds until the page reloads
            self._storage.setItem(KEY, theme)
