"""Thin wrappers over the browser APIs the page uses: listeners, JS objects, files, clipboard.

Browser only: `js` and `pyodide` are imported inside the functions, so the modules that
import this one still import on CPython. JS values come back as `Any`; callers turn them
into Python values (`str(...)`, `bool(...)`) where they use them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class File(Protocol):
    """A file to offer as a download (client.app.ExportFile)."""

    @property
    def text(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def mime(self) -> str: ...


def to_init(options: dict[str, Any]) -> Any:
    """A Python dict as a plain JS object (the `init` argument of fetch, Blob...)."""
    from js import Object
    from pyodide.ffi import to_js

    return to_js(options, dict_converter=Object.fromEntries)


def listen(element: Any, kind: str, handler: Callable[[Any], object]) -> Any:
    """Add an event listener; returns its proxy, which the caller must keep referenced."""
    from pyodide.ffi import create_proxy

    proxy = create_proxy(handler)
    element.addEventListener(kind, proxy)
    return proxy


def local_time(seconds: float) -> str:
    """`seconds` since the epoch as the reader's own clock and calendar write it (the browser's
    locale and time zone, which Python in the page does not know)."""
    from js import Date

    return str(Date.new(seconds * 1000).toLocaleString(None, to_init({"dateStyle": "medium", "timeStyle": "short"})))


def download(text: str, filename: str, mime: str) -> None:
    """Offer `text` as a file download."""
    from js import URL, Blob, document
    from pyodide.ffi import to_js

    blob = Blob.new(to_js([text]), to_init({"type": mime}))
    link = document.createElement("a")
    link.href = URL.createObjectURL(blob)
    link.download = filename
    link.click()
    URL.revokeObjectURL(link.href)


def offer(file: File | None) -> None:
    """Offer `file` as a download; None: there is nothing to offer."""
    if file is not None:
        download(file.text, file.filename, file.mime)


async def offered(pending: Awaitable[File | None]) -> None:
    """`offer` a file still being made (an export reads its images from storage first)."""
    offer(await pending)


async def picked_file_text(picker: Any) -> str | None:
    """The text of the file chosen in an <input type=file> (None if none), clearing the choice."""
    files = picker.files
    if not files.length:
        return None
    text = await files.item(0).text()
    picker.value = ""  # picking the same file again fires `change` again
    return str(text)


async def copy_text(button: Any, text: str) -> None:
    """Put `text` on the clipboard and say so on `button` for a moment."""
    import asyncio

    from js import navigator

    label = button.textContent
    await navigator.clipboard.writeText(text)
    button.textContent = "Copied"
    await asyncio.sleep(1.5)
    button.textContent = label


async def load_wheels(urls: tuple[str, ...]) -> None:
    """Load pure-Python wheels served by our server into Pyodide (no micropip).

    Raises when one does not load, with Pyodide's reason: Pyodide itself only logs it, and resolves.
    """
    from js import location
    from pyodide.ffi import create_proxy, to_js
    from pyodide_js import loadPackage

    failures: list[str] = []
    report = create_proxy(lambda message: failures.append(str(message)))
    try:
        absolute = to_js([str(location.origin) + url for url in urls])
        loaded = await loadPackage(absolute, to_init({"errorCallback": report}))
    finally:
        report.destroy()
    if len(loaded) < len(urls):
        raise RuntimeError(failures[-1] if failures else "not loaded")  # the last line is the error itself
