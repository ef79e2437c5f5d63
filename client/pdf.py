"""PDFs attached to a message, read as text: each page under a line naming the file and the page,
so the model can say where a passage came from, and the whole then fenced like any text file.

Pure Python: pypdf does the reading, here and in the browser alike, so CPython tests run the same
decisions on the same parser. A PDF with no text (a scan), one locked with a password, one
encrypted with AES (pypdf needs `cryptography` for it, which Pyodide does not have) and one that
does not parse are each refused in one line. In the browser pypdf's wheel is fetched the first time
a PDF is attached (`load`), never at start-up.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import PurePosixPath

from client.attachments import Attachment, Refused, clean_name

# Loaded by `load`; scripts/vendor.py downloads it with the other wheels the page loads late.
WHEELS = ("/static/wheels/pypdf-7.1.1-py3-none-any.whl",)
MAGIC = b"%PDF-"  # a PDF's first bytes
# A PDF is mostly fonts and pictures, so its bytes say little about its text (which must still fit
# a message); this bound only keeps a huge file from being read into the page's memory.
MAX_PDF_BYTES = 64 * 1024 * 1024
NO_TEXT_ON_PAGE = "(no text on this page)"


def named_pdf(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() == ".pdf"


def is_pdf(name: str, data: bytes) -> bool:
    """A PDF by its first bytes, whatever it is called; or by its name, so that a damaged one is
    said to be a damaged PDF rather than a file that is not text."""
    return data.startswith(MAGIC) or named_pdf(name)


def check_size(name: str, size: int) -> None:
    """Refuse a PDF too big to read before reading it."""
    if size > MAX_PDF_BYTES:
        raise Refused(f"{name} is too big: {size:,} bytes; a PDF may be up to {MAX_PDF_BYTES:,}")


def page_label(name: str, number: int) -> str:
    return f"File: {name}, page {number}"


def refusal(name: str, why: str) -> str:
    return f"{name}: {why}; nothing was attached"


def unavailable(name: str, why: object) -> str:
    """Refused, since pypdf could not be loaded into the page."""
    return refusal(name, f"the PDF reader could not be loaded ({why})")


def labelled(name: str, pages: list[str]) -> str:
    """The pages' text, each under its label; an empty page keeps its label, so page numbers stay true."""
    return "\n\n".join(f"{page_label(name, n)}\n{text.strip() or NO_TEXT_ON_PAGE}" for n, text in enumerate(pages, 1))


async def page_texts(name: str, data: bytes) -> list[str]:
    """Each page's text, as pypdf extracts it; Refused if the PDF is locked, AES-encrypted or does not parse."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data))  # opens one with an empty user password by itself
        texts = []
        for page in reader.pages:
            texts.append(page.extract_text())
            await asyncio.sleep(0)  # the page's Python shares the browser's thread: let it paint between pages
        return texts
    except FileNotDecryptedError as exc:
        raise Refused(refusal(name, "locked with a password")) from exc
    except DependencyError as exc:  # the only dependency pypdf lacks here is an AES implementation
        raise Refused(refusal(name, "encrypted with AES, which this page cannot decrypt")) from exc
    except Exception as exc:  # a damaged file raises many kinds, from pypdf and from what it calls
        why = " ".join(str(exc).split()) or type(exc).__name__  # the note gives each refusal one line
        raise Refused(refusal(name, f"not a PDF that can be read ({why})")) from exc


async def read(name: str, data: bytes) -> Attachment:
    """The PDF as a text attachment, page by page; Refused if it has no text or cannot be read."""
    name = clean_name(name)
    pages = await page_texts(name, data)
    if not any(text.strip() for text in pages):
        raise Refused(refusal(name, "no text in it (a scanned PDF?)"))
    return Attachment(name, labelled(name, pages))


async def load() -> None:
    """Make pypdf importable: on CPython it is installed; in the browser its wheel is fetched now.
    Raises when it cannot be (the wheel did not come, or does not import)."""
    try:
        import pypdf  # noqa: F401
    except ImportError:
        from client.browser import load_wheels

        await load_wheels(WHEELS)
        import pypdf  # noqa: F401
