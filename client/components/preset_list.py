"""PresetList: in the Settings dialog, "Save as preset" (the sampling values above, under a name)
and the user's own presets, each with a Delete button. Built-in presets are not listed: they cannot
be changed. Enter in the name box saves the preset rather than the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.presets import NAME_MAX, Presets, clean_name, describe
from wire.types import SamplingParams

ROW = "flex items-center gap-2 rounded-lg px-2 py-1 text-sm odd:bg-gray-50 dark:odd:bg-gray-800/60"
DELETE = (
    "rounded px-2 py-0.5 text-xs text-red-700 hover:bg-red-50 focus-visible:outline-2 focus-visible:outline-blue-600 "
    "dark:text-red-300 dark:hover:bg-red-950"
)
FIX_FIRST = "Fix the values above first."


class PresetList:
    """`read()`: the Settings form's params, or None if a field is not valid (the form says which).
    `on_save(name, params)`: returns why not, or "". `on_delete(name)`."""

    def __init__(
        self,
        dialog: Any,
        read: Callable[[], SamplingParams | None],
        on_save: Callable[[str, SamplingParams], str],
        on_delete: Callable[[str], None],
    ) -> None:
        from js import document

        get = document.getElementById
        self._read, self._on_save, self._on_delete = read, on_save, on_delete
        self._name, self._message, self._list = get("preset-name"), get("preset-message"), get("user-presets")
        self._name.maxLength = NAME_MAX
        self._proxies = [
            listen(get("save-preset"), "click", lambda _e: self._save()),
            listen(self._name, "keydown", self._key),
            listen(self._list, "click", self._click),
            listen(dialog, "close", lambda _e: self._say("")),
        ]

    def render(self, user: Presets) -> None:
        from js import document

        rows = []
        for name in sorted(user, key=str.casefold):
            row = document.createElement("li")
            row.className = ROW
            label = document.createElement("span")
            label.className = "min-w-0 flex-1"
            title = document.createElement("span")
            title.className = "font-medium"
            title.textContent = name
            values = document.createElement("span")
            values.className = "block truncate text-xs text-gray-600 dark:text-gray-400"
            values.textContent = describe(user[name])
            label.append(title, values)
            button = document.createElement("button")
            button.type = "button"
            button.className = DELETE
            button.textContent = "Delete"
            button.setAttribute("aria-label", f"Delete preset: {name}")
            button.dataset.preset = name
            row.append(label, button)
            rows.append(row)
        self._list.replaceChildren(*rows)
        self._list.hidden = not rows

    def _say(self, text: str) -> None:
        self._message.textContent = text

    def _save(self) -> None:
        params = self._read()
        if params is None:
            self._say(FIX_FIRST)
            return
        name = clean_name(str(self._name.value))
        error = self._on_save(name, params)
        if error:
            self._say(error)
            self._name.focus()
            return
        self._name.value = ""
        self._say(f"Saved preset {name}: pick it in Chat settings.")

    def _key(self, event: Any) -> None:
        if event.key == "Enter":
            event.preventDefault()  # not the form's submit: that would save the settings
            self._save()

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-preset]")
        if button:  # JS null (jsnull in Pyodide 314, not None) when the click missed a button
            name = str(button.dataset.preset)
            self._on_delete(name)
            self._say(f"Deleted preset {name}.")
            self._name.focus()  # its button is gone: keep keyboard focus in the dialog
