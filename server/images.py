"""Images in requests: `data:` URLs only, since this server fetches nothing from elsewhere.

Every front door names an image by where it sits in its request (`messages[0].content[1]`) and
checks it here before it queues: a URL that is no base64 image is refused, and so is any image
to a model without a vision projector. Whether the bytes decode is the engine's to say.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


class ImageError(Exception):
    """An image a model cannot take, and why (in words a user can act on)."""


@dataclass(frozen=True)
class Located:
    """An image's data URL, and where its request holds it."""

    where: str
    url: str


def base64_of(url: str) -> str:
    """The base64 data of an image's `data:` URL; `ImageError` saying why it is none."""
    if not url.startswith("data:"):
        shown = url if len(url) <= 40 else url[:40] + "..."
        raise ImageError(f"{shown!r} is not a data: URL; this server fetches nothing, so send the image"
                         " itself as data:image/png;base64,...")
    head, comma, data = url.partition(",")
    media_type, _, encoding = head.removeprefix("data:").partition(";")
    if not comma or encoding != "base64":
        raise ImageError("a data: URL must carry base64 (data:image/png;base64,...)")
    if not media_type.startswith("image/"):
        raise ImageError(f"the data: URL holds {media_type or 'no media type'}, not an image/* type")
    try:
        if not base64.b64decode(data, validate=True):
            raise ImageError("the data: URL holds no data")
    except binascii.Error as exc:
        raise ImageError(f"its base64 does not decode ({exc})") from None
    return data


# The first bytes of the image formats llama.cpp reads, for clients that send bare base64 (Ollama's)
_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"))


def data_url(data: str, media_type: str = "") -> str:
    """A `data:` URL of base64 `data`; with no media type, the one its first bytes say (an image
    that is none of the formats known here, or no base64, is left for `base64_of` to refuse)."""
    if not media_type:
        try:
            head = base64.b64decode(data[:24] + "=" * (-len(data[:24]) % 4))
        except (binascii.Error, ValueError):
            head = b""
        webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        media_type = "image/webp" if webp else next((t for magic, t in _MAGIC if head.startswith(magic)), "image/png")
    return f"data:{media_type};base64,{data}"


def image_parts(text: str, urls: list[str]) -> str | list[dict[str, object]]:
    """A user's message as OpenAI content: its text, with its images as parts where it has any
    (the tool path renders OpenAI chats)."""
    if not urls:
        return text
    images: list[dict[str, object]] = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"type": "text", "text": text}, *images]
