"""PDFs for the tests, written by hand: Helvetica text in uncompressed content streams and a
correct cross-reference table, which pypdf extracts exactly; a page may be an image only, as a
scanner makes it. Encrypted ones are these, encrypted by pypdf's own writer."""

from __future__ import annotations

import io
import re

from pypdf import PdfWriter

SCAN = None  # a page holding only an image: no text layer
# A 2x2 grey image, uncompressed: what a scanner's page is, in miniature.
_IMAGE = b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8"
_IMAGE_DATA = b"\x00\x80\x80\xff"


def _string(line: str) -> bytes:
    """A line as a PDF literal string: parentheses and backslashes escaped."""
    return b"(" + re.sub(rb"([()\\])", rb"\\\1", line.encode("latin-1")) + b")"


def _content(text: str | None) -> bytes:
    if text is None:
        return b"q 200 0 0 200 72 500 cm /Im1 Do Q"
    lines = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
    lines += [_string(line) + b" Tj T*" for line in text.split("\n")]
    return b"\n".join([*lines, b"ET"])


def pdf(*pages: str | None) -> bytes:
    """A PDF with a page for each of `pages`: its lines of text, or SCAN for an image only."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree's number is known
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    image = add(_IMAGE + b" /Length %d >>\nstream\n" % len(_IMAGE_DATA) + _IMAGE_DATA + b"\nendstream")
    tree = len(objects) + 1 + 2 * len(pages)
    kids = []
    for text in pages:
        content = _content(text)
        stream = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        resources = b"<< /Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >>" % (font, image)
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources %s /Contents %d 0 R >>"
                % (tree, resources, stream)
            )
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))) == tree
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


def encrypted(data: bytes, algorithm: str, user_password: str = "") -> bytes:
    """`data` encrypted with `algorithm` ("RC4-128", "AES-128", "AES-256"); an empty user password
    opens it without asking, as many PDFs that only restrict printing or copying are."""
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
