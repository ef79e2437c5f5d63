"""Images on the page: a Blob URL per image this page has (made once, from client.pictures' bytes),
the thumbnail that shows one, and the dialog that shows one full size.

Blob URLs, not data URLs: the bytes are handed to the browser once, and the many places that show
the same image share them without copying a base64 string into each element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen, to_init
from client.pictures import Picture

THUMB = "size-16 rounded-lg object-cover"  # in a sent message
THUMB_SMALL = "size-8 shrink-0 rounded object-cover"  # in a draft's chip


def open_label(name: str) -> str:
    """The accessible name of a sent image's thumbnail, a button that opens it full size."""
    return f"Open image {name}"


class BlobUrls:
    """The Blob URL of each image by digest, made the first time it is asked for; "" when this page
    has not got the image (yet, or at all)."""

    def __init__(self, picture: Callable[[str], Picture | None]) -> None:
        self._picture = picture
        self._urls: dict[str, str] = {}

    def url(self, digest: str) -> str:
        if digest not in self._urls:
            picture = self._picture(digest)
            if picture is None:
                return ""
            from js import URL, Blob, Uint8Array
            from pyodide.ffi import to_js

            blob = Blob.new(to_js([Uint8Array.new(picture.data)]), to_init({"type": picture.type}))
            self._urls[digest] = str(URL.createObjectURL(blob))
        return self._urls[digest]


def thumbnail(document: Any, url: str, look: str) -> Any:
    """An <img> of the image; its alt text is empty, for what holds it names the image."""
    image = document.createElement("img")
    image.src = url
    image.alt = ""
    image.className = look
    image.setAttribute("draggable", "false")
    return image


class ImageViewer:
    """A modal <dialog> that shows one image full size, under its name; Close, Escape or a click
    beside the image closes it."""

    def __init__(self, dialog: Any, title: Any, image: Any, close: Any) -> None:
        self._dialog, self._title, self._image = dialog, title, image
        self._proxies = [
            listen(close, "click", lambda _e: dialog.close()),
            listen(dialog, "click", self._backdrop),
            listen(dialog, "close", lambda _e: image.removeAttribute("src")),
        ]

    def open(self, url: str, name: str) -> None:
        self._title.textContent = name
        self._image.src = url
        self._image.alt = name
        self._dialog.showModal()

    def _backdrop(self, event: Any) -> None:
        if event.target == self._dialog:  # the backdrop, not the image or a button
            self._dialog.close()
