"""Attachments: the Attach button and its hidden file input, dropping files on the message form
and pasting them into it, the chips of the files and images attached so far (each with its Remove
button; an image's shows its thumbnail), and the line that says why a file was refused. File chips
in sent messages are built here too (`chip`), by client.components.chat_area.

What a file may be, and the counting, are client.app's and client.attachments'; this only reads the
browser's File objects lazily (`Picked.read`), so a file refused for its size is never read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.attachments import Picked
from client.browser import listen
from client.components.thumbnails import THUMB_SMALL, thumbnail

CHIP = (
    "inline-flex max-w-full min-w-0 items-center gap-1.5 rounded-lg border border-gray-300 bg-gray-50 px-2 py-1 "
    "text-sm text-gray-800 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-200"
)
CHIP_ITEM = "min-w-0 max-w-full"
CHIP_NAME = "min-w-0 truncate"
CHIP_ICON = "size-4 shrink-0 text-gray-500 dark:text-gray-400"
REMOVE = (
    "shrink-0 rounded px-1 leading-none text-gray-600 hover:bg-gray-200 hover:text-gray-900 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:text-gray-300 dark:hover:bg-gray-800 dark:hover:text-white"
)
# A page of text with a folded corner (24-unit box), drawn with createElementNS.
ICON_PATH = "M6 2h8l6 6v14H6z M14 2v6h6"
SVG = "http://www.w3.org/2000/svg"
LIST_LABEL = "Attached files"  # the chips' list, in the draft and in a sent message
Chip = tuple[str, str]  # a name, and its thumbnail's URL for an image ("": a file)


def remove_label(name: str) -> str:
    return f"Remove {name}"


def chip_item(document: Any, name: str, thumb: str = "") -> tuple[Any, Any]:
    """A list item holding a file's chip (an image's, with `thumb`); returns both (the chip takes a
    Remove button in the draft)."""
    item = document.createElement("li")
    item.className = CHIP_ITEM
    piece = chip(document, name, thumb)
    item.append(piece)
    return item, piece


def chip(document: Any, name: str, thumb: str = "") -> Any:
    """A file's chip: an icon (an image's thumbnail, from the URL `thumb`) and its name (a file's
    text is never shown here)."""
    item = document.createElement("span")
    item.className = CHIP
    item.dataset.part = "image" if thumb else "file"
    label = document.createElement("span")
    label.className = CHIP_NAME
    label.dataset.part = "file-name"
    label.textContent = name
    if thumb:
        item.append(thumbnail(document, thumb, THUMB_SMALL), label)
        return item
    icon = document.createElementNS(SVG, "svg")
    icon.setAttribute("viewBox", "0 0 24 24")
    icon.setAttribute("aria-hidden", "true")
    icon.setAttribute("class", CHIP_ICON)
    path = document.createElementNS(SVG, "path")
    for attr, value in (("d", ICON_PATH), ("fill", "none"), ("stroke", "currentColor"), ("stroke-width", "2")):
        path.setAttribute(attr, value)
    icon.append(path)
    item.append(icon, label)
    return item


def picked(files: Any) -> list[Picked]:
    """A JS FileList as Picked files, read only when asked."""

    def reader(file: Any) -> Callable[[], Any]:
        async def read() -> bytes:
            return bytes((await file.arrayBuffer()).to_bytes())

        return read

    out = []
    for i in range(int(files.length)):
        file = files.item(i)
        out.append(Picked(str(file.name), int(file.size), reader(file), str(file.type)))
    return out


class Attachments:
    """Binds the message form (the drop target), the Attach button, the file input, the chips list
    and the refusal line; calls `on_pick(files)` with files chosen or dropped, `on_remove(index)`."""

    def __init__(
        self,
        form: Any,
        button: Any,
        picker: Any,
        chips: Any,
        note: Any,
        on_pick: Callable[[list[Picked]], object],
        on_remove: Callable[[int], None],
    ) -> None:
        from js import document

        self._form, self._button, self._picker, self._chips, self._note = form, button, picker, chips, note
        self._on_pick, self._on_remove = on_pick, on_remove
        chips.setAttribute("aria-label", LIST_LABEL)
        self._shown: tuple[tuple[Chip, ...], str] | None = None
        self._proxies = [
            listen(button, "click", lambda _e: picker.click()),
            listen(picker, "change", self._chosen),
            listen(form, "dragover", self._over),
            listen(form, "dragleave", self._leave),
            listen(form, "drop", self._drop),
            listen(form, "paste", self._paste),  # an image copied elsewhere, pasted into the message box
            # Files dropped beside the form: the browser would leave the app to open them.
            listen(document, "dragover", self._ignore),
            listen(document, "drop", self._ignore),
            listen(chips, "click", self._click),
        ]

    def enable(self) -> None:
        self._button.disabled = False

    def render(self, chips: tuple[Chip, ...], note: str) -> None:
        if self._shown == (chips, note):
            return
        self._shown = (chips, note)
        from js import document

        items = []
        for index, (name, thumb) in enumerate(chips):
            item, piece = chip_item(document, name, thumb)
            remove = document.createElement("button")
            remove.type = "button"
            remove.className = REMOVE
            remove.dataset.index = str(index)
            remove.setAttribute("aria-label", remove_label(name))
            remove.textContent = "×"
            piece.append(remove)
            items.append(item)
        self._chips.replaceChildren(*items)
        self._chips.hidden = not chips
        self._note.textContent = note

    def _chosen(self, _event: Any) -> None:
        files = picked(self._picker.files)
        self._picker.value = ""  # choosing the same file again fires `change` again
        if files:
            self._on_pick(files)

    @staticmethod
    def _carries_files(event: Any) -> bool:
        return bool(event.dataTransfer) and bool(event.dataTransfer.types.includes("Files"))

    def _over(self, event: Any) -> None:
        if self._carries_files(event):
            event.preventDefault()  # this is a drop target
            event.dataTransfer.dropEffect = "copy"
            self._form.dataset.drop = "true"

    def _ignore(self, event: Any) -> None:
        if self._carries_files(event) and not event.defaultPrevented:  # the form took it already
            event.preventDefault()

    def _leave(self, event: Any) -> None:
        if not self._form.contains(event.relatedTarget):  # left the form, not just moved onto a child
            self._form.removeAttribute("data-drop")

    def _drop(self, event: Any) -> None:
        self._form.removeAttribute("data-drop")
        if not self._carries_files(event):
            return
        event.preventDefault()  # the browser would open the file instead
        files = picked(event.dataTransfer.files)
        if files:
            self._on_pick(files)

    def _paste(self, event: Any) -> None:
        data = event.clipboardData
        # Text is the text box's own, even with a picture of it beside (spreadsheet cells copy as both).
        if not data or data.types.includes("text/plain"):
            return
        files = picked(data.files)
        if files:
            event.preventDefault()
            self._on_pick(files)

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-index]")
        if button:  # JS null (jsnull in Pyodide 314, not None) when the click missed a button
            self._on_remove(int(button.dataset.index))
