"""ModelPicker: the header's "Model" <select>, the open chat's model.

The options come from `GET /api/models`: usable models can be chosen, unusable ones are listed
disabled with the reason. A server that does not list its models (an older one) gets a picker
with its one model, named by `/health`; a server that says neither gets no picker. Choosing
calls `on_choose(name)`; focusing the picker calls `on_open()` so the list is fetched afresh
(model files come and go without a restart). What to show is computed by `options`, without a DOM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.browser import listen
from wire.types import Health, ModelInfo, ModelList

DEFAULT = ""  # the option value for "the server's default", when the server names no files


@dataclass(frozen=True)
class Option:
    value: str
    text: str
    disabled: bool = False
    title: str = ""


def describe(model: ModelInfo) -> str:
    """The tooltip of a usable model: what the server says about it."""
    parts = [
        model.engine,
        f"context {model.n_ctx}" if model.n_ctx else "",
        model.template and f"template: {model.template}",
    ]
    if model.loaded:
        parts.append("loaded")
    return ", ".join(p for p in parts if p)


def options(models: ModelList | None, health: Health | None, chosen: str) -> tuple[tuple[Option, ...], str]:
    """The picker's options and the selected value, for a chat that asks `chosen` ("" = the default)."""
    if models is None:
        if health is None or not health.model:
            return (), DEFAULT
        return (Option(DEFAULT, health.model, title="The server's model"),), DEFAULT
    listed: list[Option] = []
    for model in models.models:
        if model.usable:
            listed.append(Option(model.name, model.name, title=describe(model)))
        else:
            reason = model.reason or "not usable"
            listed.append(Option(model.name, f"{model.name} (unusable: {reason})", disabled=True, title=reason))
    selected = chosen or models.default
    if selected and all(o.value != selected for o in listed):
        missing = "This server does not offer this model now: pick another"
        listed.insert(0, Option(selected, f"{selected} (not available)", disabled=True, title=missing))
    return tuple(listed), selected


class ModelPicker:
    """Binds the header's picker (`field`: its label and <select>, hidden while it has nothing to offer)."""

    def __init__(
        self, field: Any, select: Any, on_choose: Callable[[str], None], on_open: Callable[[], object]
    ) -> None:
        self._field, self._select = field, select
        self._shown: tuple[Option, ...] | None = None
        self._proxies = [
            listen(select, "change", lambda _e: on_choose(str(select.value))),
            listen(select, "focus", lambda _e: on_open()),
        ]

    def render(self, offered: tuple[Option, ...], selected: str) -> None:
        from js import document

        if offered != self._shown:
            self._shown = offered
            self._select.replaceChildren()
            for option in offered:
                element = document.createElement("option")
                element.value = option.value
                element.textContent = option.text
                element.disabled = option.disabled
                if option.title:
                    element.title = option.title
                self._select.append(element)
            self._field.hidden = not offered
        if str(self._select.value) != selected:
            self._select.value = selected
