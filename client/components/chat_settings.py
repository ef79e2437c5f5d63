"""ChatSettings: the open chat's own system prompt and sampling preset, in a native modal <dialog>.

The system prompt is one of three choices (radio buttons, so "none" and "the global one" cannot be
confused): the one in Settings (shown beside it), none at all, or the chat's own, a multi-line
textarea kept exactly as written (typing in it picks "own"). The preset is a <select>: the default
settings, the built-in presets, the user's own (client.presets). Save hands both to `on_save`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.presets import BUILT_IN, Presets, describe, every
from client.state import Chat
from wire.types import SYSTEM_MAX, SamplingParams

DEFAULT, NONE, OWN = "default", "none", "own"  # the radio buttons' values
DEFAULT_PRESET = "Default settings"
HINT_CHARS = 120


def choice_of(system: str | None) -> str:
    """Which radio button a chat's `system` checks."""
    if system is None:
        return DEFAULT
    return OWN if system.strip() else NONE


def system_of(choice: str, text: str) -> str | None:
    """The chat's `system` for the checked radio button and the textarea's text (kept as written)."""
    if choice == DEFAULT:
        return None
    return text if choice == OWN else ""


def global_hint(params: SamplingParams) -> str:
    """What "the one in Settings" is, in a line."""
    if not params.system:
        return "Settings has none: the server's default applies."
    words = " ".join(params.system.split())
    shown = words if len(words) <= HINT_CHARS else words[: HINT_CHARS - 1].rstrip() + "…"
    return f"From Settings: “{shown}”"


def groups(user: Presets) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The preset <select>'s option groups (label, names); the user's own only when there are some."""
    names = tuple(every(user))
    built_in = tuple(n for n in names if n in BUILT_IN)
    own = tuple(n for n in names if n not in BUILT_IN)
    return (("Built-in", built_in),) + ((("Yours", own),) if own else ())


def summary(chat: Chat) -> str:
    """What the chat has of its own, for the buttons that open the dialog; "" when on the defaults."""
    parts = []
    if chat.system is not None:
        parts.append("its own system prompt" if chat.system.strip() else "no system prompt")
    if chat.preset:
        parts.append(f"the {chat.preset} preset")
    return f"This chat has {' and '.join(parts)}." if parts else ""


def preset_hint(name: str, user: Presets) -> str:
    preset = every(user).get(name)
    return "The values in Settings." if preset is None else f"Over the values in Settings: {describe(preset)}."


class ChatSettings:
    """`openers`: the buttons that open the dialog; they are marked while the open chat has settings of its own."""

    def __init__(self, dialog: Any, form: Any, openers: list[Any], on_save: Callable[[str | None, str], None]) -> None:
        from js import document

        get = document.getElementById
        self._dialog, self._openers, self._on_save = dialog, openers, on_save
        self._note = get("chat-settings-note")
        self._text, self._select = get("chat-system"), get("chat-preset")
        self._text.maxLength = SYSTEM_MAX
        self._radios = {value: get(f"chat-system-{value}") for value in (DEFAULT, NONE, OWN)}
        self._global, self._hint = get("chat-system-global"), get("chat-preset-hint")
        self._user: Presets = {}
        self._proxies = [
            listen(form, "submit", self._submit),
            listen(self._text, "input", lambda _e: setattr(self._radios[OWN], "checked", True)),
            listen(self._select, "change", lambda _e: self._show_hint()),
            listen(get("chat-settings-cancel"), "click", lambda _e: dialog.close()),
        ]

    def mark(self, chat: Chat) -> None:
        """Say on the openers (a dot, and their description) whether `chat` has settings of its own."""
        note = summary(chat)
        self._note.textContent = note
        for button in self._openers:
            button.dataset.custom = "true" if note else "false"
            button.title = note
            if note:
                button.setAttribute("aria-describedby", "chat-settings-note")
            else:
                button.removeAttribute("aria-describedby")

    def open(self, chat: Chat, params: SamplingParams, user: Presets) -> None:
        from js import document

        self._user = user
        self._radios[choice_of(chat.system)].checked = True
        self._text.value = chat.system or ""
        self._text.placeholder = params.system or "e.g. You answer in one short sentence."
        self._global.textContent = global_hint(params)
        self._select.replaceChildren()
        self._select.append(self._option(document, "", DEFAULT_PRESET))
        for label, names in groups(user):
            group = document.createElement("optgroup")
            group.label = label
            for name in names:
                group.append(self._option(document, name, name))
            self._select.append(group)
        known = chat.preset in every(user)  # a deleted preset: the chat is on the default settings
        self._select.value = chat.preset if known else ""
        self._show_hint()
        self._dialog.showModal()

    @staticmethod
    def _option(document: Any, value: str, text: str) -> Any:
        option = document.createElement("option")
        option.value, option.textContent = value, text
        return option

    def _show_hint(self) -> None:
        self._hint.textContent = preset_hint(str(self._select.value), self._user)

    def _submit(self, event: Any) -> None:
        event.preventDefault()
        choice = next(value for value, radio in self._radios.items() if radio.checked)
        self._on_save(system_of(choice, str(self._text.value)), str(self._select.value))
        self._dialog.close()
