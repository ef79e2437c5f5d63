"""PDFs read as text (client.pdf), on CPython with the pypdf the page loads: page labels, and the
PDFs refused in one line (no text, locked, AES without a library for it, damaged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from client.attachments import MAX_FILE_BYTES, Attachment, Refused, compose
from client.pdf import MAX_PDF_BYTES, check_size, is_pdf
from client.pdf import read as read_pdf
from tests.harness import ROOT, run_async
from tests.pdfs import SCAN, encrypted, pdf


def read(name: str, data: bytes) -> Attachment:
    return run_async(read_pdf(name, data))  # asyncio.run fails while a browser test's loop runs


REPORT = pdf("Quarterly report\nSales rose (a little) by 3\\4 of a point.", "Costs fell.", "Outlook: calm.")


def test_a_one_page_pdf_is_its_text_under_the_page_s_label() -> None:
    assert read("hello.pdf", pdf("Hello, world.")) == Attachment("hello.pdf", "File: hello.pdf, page 1\nHello, world.")


def test_each_page_is_labelled_and_the_whole_is_fenced_like_any_text_file() -> None:
    file = read("report.pdf", REPORT)
    assert file.text == (
        "File: report.pdf, page 1\nQuarterly report\nSales rose (a little) by 3\\4 of a point.\n\n"
        "File: report.pdf, page 2\nCosts fell.\n\n"
        "File: report.pdf, page 3\nOutlook: calm."
    )
    assert compose("Sum it up.", [file]) == f"File: report.pdf\n```\n{file.text}\n```\n\nSum it up."


def test_a_page_without_text_keeps_its_label_so_page_numbers_stay_true() -> None:
    file = read("mixed.pdf", pdf("Text first.", SCAN, "Text last."))
    assert file.text == (
        "File: mixed.pdf, page 1\nText first.\n\n"
        "File: mixed.pdf, page 2\n(no text on this page)\n\n"
        "File: mixed.pdf, page 3\nText last."
    )


def test_a_scanned_pdf_is_refused_in_one_line() -> None:
    with pytest.raises(Refused, match=r"^scan\.pdf: no text in it \(a scanned PDF\?\); nothing was attached$"):
        read("scan.pdf", pdf(SCAN, SCAN))
    with pytest.raises(Refused, match=r"^empty\.pdf: no text in it"):
        read("empty.pdf", pdf())  # no pages at all


def test_a_pdf_with_an_empty_user_password_opens_without_asking() -> None:
    # Owner-only protection (no printing, no copying) is common, and RC4 needs no library pypdf lacks.
    assert read("rc4.pdf", encrypted(pdf("Open me."), "RC4-128")).text == "File: rc4.pdf, page 1\nOpen me."


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_locked_with_a_password_is_refused(algorithm: str) -> None:
    with pytest.raises(Refused, match=r"^locked\.pdf: locked with a password; nothing was attached$"):
        read("locked.pdf", encrypted(pdf("Secret."), algorithm, user_password="secret"))


# The page's Pyodide has no `cryptography` (nor pycryptodome): pypdf is imported without them.
WITHOUT_AES = """
import asyncio, json, sys
sys.modules["cryptography"] = sys.modules["Crypto"] = None
from client.attachments import Refused
from client.pdf import read
out = {}
for name, path in json.loads(sys.argv[1]).items():
    try:
        out[name] = asyncio.run(read(name, open(path, "rb").read())).text
    except Refused as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def test_without_an_aes_library_as_in_the_page_an_aes_pdf_is_refused_and_rc4_still_opens(tmp_path: Path) -> None:
    files = {
        "aes128.pdf": encrypted(pdf("Secret."), "AES-128"),
        "aes256.pdf": encrypted(pdf("Secret."), "AES-256"),
        "rc4.pdf": encrypted(pdf("Open me."), "RC4-128"),
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_AES, json.dumps(paths)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    aes = "encrypted with AES, which this page cannot decrypt; nothing was attached"
    assert json.loads(done.stdout) == {
        "aes128.pdf": f"aes128.pdf: {aes}",
        "aes256.pdf": f"aes256.pdf: {aes}",
        "rc4.pdf": "File: rc4.pdf, page 1\nOpen me.",
    }


@pytest.mark.parametrize(
    "data",
    [REPORT[: len(REPORT) // 2], REPORT[:40], b"", b"%PDF-1.7\nnothing else", b"not a PDF at all"],
    ids=["truncated", "header-only", "empty", "no-objects", "not-pdf"],
)
def test_a_damaged_pdf_is_refused_in_one_line_with_pypdf_s_reason(data: bytes) -> None:
    with pytest.raises(Refused, match=r"^broken\.pdf: not a PDF that can be read \(.+\); nothing was attached$") as no:
        read("broken.pdf", data)
    assert "\n" not in str(no.value)


def test_a_pdf_is_known_by_its_first_bytes_or_its_name() -> None:
    assert is_pdf("report.PDF", b"")  # so a damaged one is said to be a damaged PDF
    assert is_pdf("download", REPORT)
    assert not is_pdf("notes.md", b"# About %PDF-1.7 headers\n")


def test_a_pdf_may_be_bigger_than_a_text_file_but_not_without_bound() -> None:
    assert MAX_PDF_BYTES > MAX_FILE_BYTES  # pictures and fonts are most of a PDF's bytes
    check_size("big.pdf", MAX_PDF_BYTES)
    with pytest.raises(Refused, match=rf"^huge\.pdf is too big: {MAX_PDF_BYTES + 1:,} bytes; a PDF may be up to"):
        check_size("huge.pdf", MAX_PDF_BYTES + 1)


def test_the_name_is_one_line_in_the_labels_too() -> None:
    assert read("two\nlines.pdf", pdf("x")).text == "File: two lines.pdf, page 1\nx"
