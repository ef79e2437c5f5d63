"""ModelsPanel: every model the server offers, in a native modal <dialog>, with Load, Unload and
Delete (which asks first, naming the file and its size); and, unless the server is offline,
a Hugging Face repository's files to download, with each download's progress and Cancel.

What it shows comes from the app's signals (client.catalog); its buttons carry `data-action`,
handled by one listener on the dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen
from client.catalog import RUNNING, facts, hub_facts, progress_text, size_text
from wire.types import DownloadList, HubRepo, ModelInfo, ModelList

ITEM = "flex flex-col gap-1 rounded-lg border border-gray-200 p-3 text-sm dark:border-gray-700"
HINT = "text-xs text-gray-600 dark:text-gray-400"
BUTTON = (
    "rounded-lg border border-gray-300 px-3 py-1 text-sm hover:bg-gray-100 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:border-gray-700 dark:hover:bg-gray-800"
)
DANGER = (
    "rounded-lg bg-red-700 px-3 py-1 text-sm font-medium text-white hover:bg-red-800 focus-visible:outline-2 "
    "focus-visible:outline-offset-2 focus-visible:outline-red-700"
)
BAR = "h-2 w-full accent-blue-600"


class ModelsPanel:
    """`on_action(action, value)`: "load", "unload", "delete" (a model's name), "download" (a file's
    name), "cancel" (a download's id), "browse" (the repository typed)."""

    def __init__(self, dialog: Any, opener: Any, on_action: Callable[[str, str], None]) -> None:
        from js import document

        get = document.getElementById
        self._dialog, self._opener, self._on_action = dialog, opener, on_action
        self._list, self._note = get("models-list"), get("models-note")
        self._hub, self._files, self._downloads = get("hub-section"), get("hub-files"), get("downloads")
        self._repo, self._vision = get("hub-repo"), get("hub-vision")
        self._confirming = ""  # the model whose Delete waits for a second word
        self._models: ModelList | None = None
        self._proxies = [
            listen(dialog, "click", self._click),
            listen(get("hub-form"), "submit", self._browse),
            listen(get("models-close"), "click", lambda _e: dialog.close()),
        ]

    def open(self) -> None:
        self._confirming = ""
        self.show_models(self._models)
        self._dialog.showModal()

    def _browse(self, event: Any) -> None:
        event.preventDefault()
        self._on_action("browse", str(self._repo.value))

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-action]")
        if not button:  # JS null when the click missed a button
            return
        action, value = str(button.dataset.action), str(button.getAttribute("data-value") or "")
        if action in ("ask-delete", "keep"):
            self._confirming = value if action == "ask-delete" else ""
            self.show_models(self._models)
            return
        self._confirming = ""
        if action == "download":
            value = f"{value}\n{'vision' if self._vision.checked else ''}"
        self._on_action(action, value)

    def show_note(self, note: str) -> None:
        self._note.textContent = note

    def show_models(self, models: ModelList | None) -> None:
        from js import document

        self._models = models
        items = []
        for model in models.models if models is not None else ():
            items.append(self._model_item(document, model, model.name == models.default if models else False))
        self._list.replaceChildren(*items)

    def _model_item(self, document: Any, model: ModelInfo, default: bool) -> Any:
        item = _el(document, "li", ITEM)
        item.dataset.model = model.name
        title = _el(document, "strong", "break-all", model.name + (" (default)" if default else ""))
        item.append(title, _el(document, "p", HINT, facts(model)))
        row = _el(document, "div", "flex flex-wrap gap-2")
        if self._confirming == model.name:
            words = f"Delete {model.name} ({size_text(model.size)}) from the models folder?"
            row.append(_el(document, "span", "", words), _button(document, "delete", model.name, "Delete file", DANGER),
                       _button(document, "keep", model.name, "Keep it"))
        elif model.usable:
            load = ("unload", "Unload") if model.loaded else ("load", "Load")
            row.append(_button(document, load[0], model.name, load[1], label=f"{load[1]} {model.name}"))
            if model.deletable:
                row.append(_button(document, "ask-delete", model.name, "Delete", label=f"Delete {model.name}"))
        item.append(row)
        return item

    def show_hub(self, hub: HubRepo | None, enabled: bool) -> None:
        from js import document

        self._hub.hidden = not enabled
        items = []
        for file in hub.models if hub is not None else ():
            item = _el(document, "li", ITEM)
            item.append(_el(document, "strong", "break-all", file.name), _el(document, "p", HINT, hub_facts(file)),
                        _button(document, "download", file.name, "Download", label=f"Download {file.name}"))
            items.append(item)
        self._files.replaceChildren(*items)
        self._vision.disabled = not (hub is not None and hub.projectors)

    def show_downloads(self, downloads: DownloadList | None) -> None:
        from js import document

        items = []
        running = [d for d in downloads.downloads if d.status in RUNNING] if downloads is not None else []
        for d in downloads.downloads if downloads is not None else ():
            item = _el(document, "li", ITEM)
            item.dataset.status = d.status
            bar = _el(document, "progress", BAR)
            bar.max, bar.value = max(d.total, 1), d.done
            bar.setAttribute("aria-label", f"{d.name} downloaded")
            item.append(_el(document, "strong", "break-all", d.name), bar, _el(document, "p", HINT, progress_text(d)))
            if d.status in RUNNING:
                item.append(_button(document, "cancel", d.id, "Cancel", label=f"Cancel the download of {d.name}"))
            items.append(item)
        self._downloads.replaceChildren(*items)
        done = sum(d.done for d in running)
        total = sum(d.total for d in running)
        self._opener.textContent = f"Models · downloading {done * 100 // max(total, 1)}%" if running else "Models"


def _el(document: Any, tag: str, cls: str, text: str = "") -> Any:
    el = document.createElement(tag)
    el.className = cls
    if text:
        el.textContent = text
    return el


def _button(document: Any, action: str, value: str, text: str, cls: str = BUTTON, label: str = "") -> Any:
    button = _el(document, "button", cls, text)
    button.type = "button"
    button.dataset.action = action
    button.setAttribute("data-value", value)
    if label:
        button.setAttribute("aria-label", label)
    return button
