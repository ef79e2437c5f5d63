"""Images attached to a message: which files are images, the size they are sent at, how a chat
names them, and the lines the page says about them. Pure Python (no DOM), tested on CPython.

A chat never holds an image's bytes: its turns name each image by the SHA-256 of its bytes
(`ImageRef`), and the bytes live apart (client.pictures, which the page keeps in IndexedDB as
Blobs), so a chat's record stays small however many images it has, and an image attached twice
is stored once.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from msgspec import Struct

# The longest side an image is sent at: larger ones are scaled down in the page first. Vision
# projectors read far fewer pixels than a photo has, so more only costs upload and storage.
MAX_SIDE = 1568
# The types the page reads (a GIF's first frame only), by their first bytes.
PNG, JPEG, WEBP, GIF = "image/png", "image/jpeg", "image/webp", "image/gif"
_MAGIC = ((b"\x89PNG\r\n\x1a\n", PNG), (b"\xff\xd8\xff", JPEG), (b"GIF87a", GIF), (b"GIF89a", GIF))
JPEG_QUALITY = 0.9  # for a photo scaled down: a lossy type stays lossy


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
# Bounds the bytes read into the page's memory before an image is scaled down.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class ImageRef(Struct, frozen=True, omit_defaults=True):
    """An image attached to a user's message, as the chat keeps it: its bytes are the store's,
    under `digest`."""

    name: str
    digest: str  # SHA-256 of the bytes sent, in hex
    type: str  # their media type
    width: int = 0
    height: int = 0
    size: int = 0  # bytes


@dataclass(frozen=True)
class Prepared:
    """An image as it is sent: its type, bytes and size in pixels (client.image_codec makes it)."""

    type: str
    data: bytes
    width: int
    height: int


def named_image(name: str, kind: str = "") -> bool:
    """A file the page takes for an image before reading it, by its name or the type the browser gives it."""
    return kind in (PNG, JPEG, WEBP, GIF) or PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def too_big(name: str, size: int) -> str:
    """Why an image is refused before it is read; "" when its size is fine."""
    if size <= MAX_IMAGE_BYTES:
        return ""
    return f"{name} is too big: {size:,} bytes; an image may be up to {MAX_IMAGE_BYTES:,}"


def sniff(data: bytes) -> str:
    """The image type of `data` by its first bytes; "" when it is none the page reads."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), "")


def fitted(width: int, height: int, longest: int = MAX_SIDE) -> tuple[int, int]:
    """The size an image of `width` x `height` is sent at: as it is, or scaled down (keeping its
    shape) until its longest side is `longest`; never a side under 1 pixel."""
    side = max(width, height)
    if side <= longest:
        return width, height
    scale = longest / side
    return max(1, round(width * scale)), max(1, round(height * scale))


def sent_type(kind: str) -> str:
    """The type an image of `kind` is sent as once redrawn: a GIF's first frame as a PNG (a model
    reads one picture; a still GIF gains nothing), the others as they came."""
    return PNG if kind == GIF else kind


def redrawn(kind: str, width: int, height: int) -> bool:
    """Whether the page redraws an image before sending it: scaled down, or a GIF (its first frame)."""
    return kind == GIF or fitted(width, height) != (width, height)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_url(kind: str, data: bytes) -> str:
    """The image as Message.images carries it."""
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def no_vision(name: str, model: str) -> str:
    """Why an image is not sent: the chat's model has no vision projector."""
    return f"{name}: this model does not take images ({model or 'the default model'})"


def unreadable(name: str, why: object) -> str:
    return f"{name}: not an image this page can read ({why}); nothing was attached"


def too_many(name: str, limit: int) -> str:
    return f"{name}: a message takes at most {limit} images; nothing was attached"


STORAGE_FULL = "Storage is full: this image was not saved; your chats are intact"


def storage_full(name: str) -> str:
    return f"{STORAGE_FULL} ({name})"


def lost(name: str) -> str:
    """What stands in for an image whose bytes this browser no longer has (never saved: storage was full)."""
    return f"{name} (not saved)"
