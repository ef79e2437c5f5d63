"""Files attached to a message: which are text, how big they may be, and how they reach the model.

Pure Python (no DOM), so the browser's rules are tested on CPython. A file is read as UTF-8 text or
refused in one line; its text goes to the model inside the message, in a Markdown fence longer than
any backtick run in it (so the file cannot close the fence), under a line naming the file. Files
come first and the typed text last: a question after its material is what models answer best.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from msgspec import Struct

from client.images import ImageRef
from wire.types import MAX_TEXT, TokenCount

# UTF-8 takes at most 4 bytes a character: a file over this many bytes cannot fit a message whatever it holds.
MAX_FILE_BYTES = 4 * MAX_TEXT

# The fence's language for the extensions whose language is plain; others get a bare fence.
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json",
    ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".html": "html", ".css": "css",
    ".sh": "bash", ".bash": "bash", ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp",
    ".hpp": "cpp", ".java": "java", ".kt": "kotlin", ".rb": "ruby", ".php": "php", ".sql": "sql",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".xml": "xml", ".ini": "ini", ".tex": "latex",
}
_BACKTICKS = re.compile(r"`+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


class Attachment(Struct, frozen=True):
    """A text file attached to a user's message: its name and its whole text."""

    name: str
    text: str


class Refused(Exception):
    """A file that cannot be attached; the message is the one line the page shows."""


@dataclass(frozen=True)
class Picked:
    """A file the user chose or dropped, not yet read: `read()` gives its bytes."""

    name: str
    size: int
    read: Callable[[], Awaitable[bytes]]
    type: str = ""  # the media type the browser gives it ("": none known)


def check_size(name: str, size: int) -> None:
    """Refuse a file too big to fit a message before reading it."""
    if size > MAX_FILE_BYTES:
        raise Refused(f"{name} is too big: {size:,} bytes; a message holds {MAX_TEXT:,} characters")


def read(name: str, data: bytes) -> Attachment:
    """The file as text; Refused if it is not text (NUL bytes, or not UTF-8) or too big for a message."""
    check_size(name, len(data))
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise Refused(f"{name} is not a text file")
    return Attachment(clean_name(name), text)


def clean_name(name: str) -> str:
    """The name as one line (a file name may hold newlines), never empty."""
    return " ".join(_CONTROL_CHARS.sub(" ", name).split()) or "file"


def language_of(name: str) -> str:
    return LANGUAGES.get(PurePosixPath(name).suffix.lower(), "")


def fenced(file: Attachment) -> str:
    """The file as the model reads it: a line naming it, then its text in a fence it cannot close."""
    longest = max((len(run) for run in _BACKTICKS.findall(file.text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = file.text if file.text.endswith("\n") or not file.text else file.text + "\n"
    return f"File: {file.name}\n{fence}{language_of(file.name)}\n{body}{fence}"


def compose(text: str, files: Sequence[Attachment]) -> str:
    """A message's text for the model: each file fenced, then what the user typed."""
    return "\n\n".join([*(fenced(f) for f in files), *([text] if text.strip() or not files else [])])


def check_fits_message(file: Attachment, attached: Sequence[Attachment], typed: str = "") -> None:
    """Refuse a file that would take the message over the server's bound with the files already
    attached and the text `typed` so far."""
    total = len(compose(typed, [*attached, file]))
    if total > MAX_TEXT:
        chars = len(file.text)
        others = " with the other files" if attached else ""
        text = " and the text typed" if typed.strip() else ""
        raise Refused(f"{file.name} is too big: {chars:,} characters{others}{text}; a message holds {MAX_TEXT:,}")


def too_long(text: str, files: Sequence[Attachment]) -> str:
    """Why a message of `text` and `files` is not sent, when it is over the server's bound."""
    chars = len(compose(text, files))
    return f"Not sent: the text and files come to {chars:,} characters; a message holds {MAX_TEXT:,}"


def check_fits_context(name: str, count: TokenCount, used: int, answer: int) -> None:
    """Refuse a file whose tokens, with those of the files already attached (`used`) and the
    answer's budget (`answer`), do not fit the model's context."""
    if count.overhead + used + count.tokens + answer <= count.n_ctx:
        return
    room = f"{answer:,} of them kept for the answer"
    if used:
        room += f" and {used:,} used by the other files"
    raise Refused(f"{name} is {count.tokens:,} tokens; this chat's model takes {count.n_ctx:,}, {room}")


def not_counted(name: str, why: str) -> str:
    """Refused, since the server could not count its tokens: a file that might not fit is never accepted blind."""
    return f"{name} was not attached: its tokens could not be counted ({why})"


@dataclass(frozen=True)
class Pending:
    """A file or an image attached to the message being written, with its tokens as the server counted them."""

    file: Attachment | ImageRef
    tokens: int = 0  # 0: not counted (a file kept from the message being edited)


def texts(attached: Sequence[Pending]) -> tuple[Attachment, ...]:
    return tuple(p.file for p in attached if isinstance(p.file, Attachment))


def images(attached: Sequence[Pending]) -> tuple[ImageRef, ...]:
    return tuple(p.file for p in attached if isinstance(p.file, ImageRef))
