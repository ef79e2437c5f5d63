"""SettingsPanel: a native modal <dialog> (focus trap, Escape to close, for free) holding the
system prompt and the sampling fields of client.settings. Save validates and hands the
params to `on_save`; Reset empties every field (server defaults) and saves that.
A read-only line says which prompt template the server uses, when it tells (`/health`). The
theme's choice sits in the same dialog (client.theme), applied at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.settings import FIELDS, form_of, parse
from client.theme import ThemePicker
from wire.types import Health, SamplingParams

LABEL = "block text-sm font-medium"
INPUT = (
    "mt-1 w-full rounded-lg border border-gray-300 bg-white px-3 py-1.5 focus:border-blue-500 focus:outline-none "
    "focus:ring-2 focus:ring-blue-500/30 dark:border-gray-700 dark:bg-gray-900"
)
HINT = "mt-0.5 text-xs text-gray-600 dark:text-gray-400"
ERROR = "mt-0.5 text-xs font-medium text-red-700 dark:text-red-300"


def template_line(health: Health | None) -> str | None:
    """The panel's line about the server's prompt template; None when the server does not say."""
    if health is None or health.template is None:
        return None
    return f"Prompt template: {health.template.name} ({health.template.source})"


class SettingsPanel:
    def __init__(self, dialog: Any, form: Any, fields: Any, on_save: Callable[[SamplingParams], None]) -> None:
        from js import document, window
        from pyodide.ffi import create_proxy

        self._dialog, self._form, self._on_save = dialog, form, on_save
        self._inputs: dict[str, Any] = {"system": document.getElementById("set-system")}
        self._template = document.getElementById("settings-template")
        self._theme = ThemePicker(document, window)
        self._errors: dict[str, Any] = {}
        for f in FIELDS:
            wrap = document.createElement("div")
            label = document.createElement("label")
            label.className = LABEL
            label.htmlFor = f"set-{f.name}"
            label.textContent = f.label
            box = document.createElement("input")
            box.id = f"set-{f.name}"
            box.name = f.name
            box.type = "number"
            box.className = INPUT
            box.min, box.max, box.step = str(f.kind(f.low)), str(f.kind(f.high)), f.step
            box.placeholder = "server default"
            box.setAttribute("aria-describedby", f"set-{f.name}-hint set-{f.name}-error")
            hint = document.createElement("p")
            hint.id = f"set-{f.name}-hint"
            hint.className = HINT
            hint.textContent = f"{f.hint} ({f.kind(f.low)}–{f.kind(f.high)})"
            error = document.createElement("p")
            error.id = f"set-{f.name}-error"
            error.className = ERROR
            error.hidden = True
            wrap.append(label, box, hint, error)
            fields.append(wrap)
            self._inputs[f.name], self._errors[f.name] = box, error
        self._proxies = [create_proxy(self._submit), create_proxy(self._reset), create_proxy(self._cancel)]
        form.addEventListener("submit", self._proxies[0])
        document.getElementById("settings-reset").addEventListener("click", self._proxies[1])
        document.getElementById("settings-cancel").addEventListener("click", self._proxies[2])

    def show_server(self, health: Health | None) -> None:
        line = template_line(health)
        self._template.textContent = line or ""
        self._template.hidden = line is None

    def open(self, params: SamplingParams) -> None:
        for name, value in form_of(params).items():
            self._inputs[name].value = value
        for error in self._errors.values():
            error.hidden = True
        self._dialog.showModal()

    def _values(self) -> dict[str, str]:
        return {name: str(box.value) for name, box in self._inputs.items()}

    def read(self) -> SamplingParams | None:
        """The params the form holds now; None (each bad field marked, the first focused) if any is not valid."""
        params, errors = parse(self._values())
        for name, error in self._errors.items():
            error.textContent = errors.get(name, "")
            error.hidden = name not in errors
            self._inputs[name].setAttribute("aria-invalid", "true" if name in errors else "false")
        if errors:
            self._inputs[next(iter(errors))].focus()
            return None
        return params

    def _submit(self, event: Any) -> None:
        event.preventDefault()
        params = self.read()
        if params is None:
            return
        self._on_save(params)
        self._dialog.close()

    def _reset(self, _event: Any) -> None:
        for box in self._inputs.values():
            box.value = ""
        self._on_save(SamplingParams())
        self._dialog.close()

    def _cancel(self, _event: Any) -> None:
        self._dialog.close()
