"""Attachments in real headless Chromium, on the real server and default model with a 512-token
context (so that a file of a few hundred words is too big for it): the Attach button and drag and
drop, the fenced file in what is sent, chips in the message, the files refused before sending, and
PDFs read as text by pypdf in the page.
The first test also takes the README's screenshot (test-results/attachment.png, ignored by git)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from client.images import no_vision
from tests.browser.helpers import (
    AXE,
    PYTHON_READY_S,
    RUN_AXE,
    VIEWPORT,
    RecordedPage,
    ask,
    assert_only_loopback,
    file,
    open_chat,
    pending,
    set_settings,
    wait_answer,
)
from tests.harness import ROOT, start_server, stop_server
from tests.pdfs import SCAN, encrypted, pdf

N_CTX = 512
DEFAULT_MODEL = "gemma-3-270m-q4_k_m.gguf"
SCREENSHOT = ROOT / "test-results" / "attachment.png"
# The screenshot's file and question: one the 270M model answers well at temperature 0 (code it does not).
CSV = "country,capital,population\nFrance,Paris,68 million\nItaly,Rome,59 million\nJapan,Tokyo,124 million\n"
QUESTION = "What is the capital of Japan, according to this file?"
CODE = 'def greet(name):\n    return f"Hello, {name}!"\n\n\nprint(greet("world"))\n'
# Markdown with a fence of its own: the fence around it must be longer.
NOTES = "# Notes\n\n```sh\nmake run\n```\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
BIG = "The quick brown fox jumps over the lazy dog. " * 80  # about 800 tokens: over 512
REPORT_PDF = pdf("Quarterly report\nSales rose by 3 points.", "Costs fell (a little).")
PYPDF = "pypdf-"  # the PDF reader's wheel, wherever it is served from


def sent_text(request: Any) -> str:
    """The last message's text in a /api/converse request."""
    return str(json.loads(request.post_data)["conversation"]["messages"][-1]["text"])


@pytest.fixture(scope="module")
def small_server() -> Iterator[str]:
    proc, url = start_server("--n-ctx", str(N_CTX), env={"MODEL_PATH": ""})
    yield url
    stop_server(proc)


def drop(page: Any, name: str, text: str) -> None:
    """Drag a file over the message form, check the drop highlight, and drop it."""
    page.evaluate(
        """([name, text]) => {
            const form = document.getElementById('type-area');
            const data = new DataTransfer();
            data.items.add(new File([text], name, {type: 'text/markdown'}));
            form.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
            window.dropHighlighted = form.dataset.drop === 'true';
            form.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        [name, text],
    )
    assert page.evaluate("window.dropHighlighted") is True
    expect(page.locator("#type-area")).not_to_have_attribute("data-drop", "true")


def drop_beside_the_form(page: Any) -> bool:
    """Drop a file on the conversation, outside the form; whether the browser may act on it (open the file)."""
    return bool(
        page.evaluate(
            """() => {
                const data = new DataTransfer();
                data.items.add(new File(['x'], 'stray.txt', {type: 'text/plain'}));
                const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
                return document.getElementById('messages').dispatchEvent(drop);
            }"""
        )
    )


def test_attach_send_and_screenshot_with_no_axe_violations(chromium: Any, small_server: str) -> None:
    assert AXE.is_file(), "run `npm ci` first"
    # bypass_csp: axe is injected as an inline script, which the page's own policy forbids.
    context = chromium.new_context(viewport={**VIEWPORT, "width": 1000}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(small_server + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
        set_settings(page, {"Max tokens": "40", "Temperature": "0"})  # the screenshot's answer: the likeliest
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Attach").click()
        chooser.value.set_files([file("countries.csv", CSV, "text/csv")])
        expect(pending(page).get_by_text("countries.csv")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("button", name="Remove countries.csv")).to_be_visible()
        page.set_input_files("#attach-file", [file("photo.png", PNG, "image/png")])
        expect(page.locator("#attach-note")).to_have_text(no_vision("photo.png", DEFAULT_MODEL))
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(RUN_AXE) == []  # the chip, its Remove button and the refusal line

        with page.expect_request(lambda r: r.url.endswith("/api/converse")) as asked:
            ask(page, QUESTION)
        assert sent_text(asked.value) == f"File: countries.csv\n```csv\n{CSV}```\n\n{QUESTION}"
        expect(pending(page)).to_be_hidden()  # the chips went with the message
        expect(page.locator("#attach-note")).to_be_empty()
        question = page.locator("li[data-role=user]").last
        expect(question.locator("[data-part=file]")).to_have_text("countries.csv")
        expect(question.locator("[data-part=bubble]")).to_have_text(QUESTION)  # not the file's text
        answer = wait_answer(page)
        expect(answer.locator("[data-part=bubble]")).to_contain_text("Tokyo")  # greedy: the same answer each run
        assert page.evaluate(RUN_AXE) == []  # the chip in the sent message
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        page.set_input_files("#attach-file", [file("photo.png", PNG, "image/png")])
        expect(page.locator("#attach-note")).to_have_text(no_vision("photo.png", DEFAULT_MODEL))
        page.emulate_media(color_scheme="dark")
        assert page.evaluate(RUN_AXE) == []  # dark: the sent chip and the refusal line
    finally:
        context.close()


def test_code_is_sent_fenced_with_its_language(recorded_page: RecordedPage, small_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, small_server)
    set_settings(page, {"Max tokens": "16"})
    page.set_input_files("#attach-file", [file("greet.py", CODE, "text/x-python")])
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["greet.py"], timeout=30_000)
    with page.expect_request(lambda r: r.url.endswith("/api/converse")) as asked:
        ask(page, "What does this program print?")
    assert sent_text(asked.value) == f"File: greet.py\n```python\n{CODE}```\n\nWhat does this program print?"
    question = page.locator("li[data-role=user]").last
    expect(question.locator("[data-part=file]")).to_have_text("greet.py")
    wait_answer(page)
    assert recorded_page.errors == []


def test_drop_files_send_without_text_and_edit_keeps_them(recorded_page: RecordedPage, small_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, small_server)
    set_settings(page, {"Max tokens": "16"})
    drop(page, "notes.md", NOTES)
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.md"], timeout=30_000)
    drop(page, "extra.txt", "spare")
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.md", "extra.txt"], timeout=30_000)
    page.get_by_role("button", name="Remove extra.txt").click()
    assert drop_beside_the_form(page) is False  # the page keeps it from leaving the app to open the file
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.md"])

    with page.expect_request(lambda r: r.url.endswith("/api/converse")) as asked:
        page.get_by_role("button", name="Send").click()  # no typed text: the file is the message
    assert sent_text(asked.value) == f"File: notes.md\n````markdown\n{NOTES}````"
    question = page.locator("li[data-role=user]").last
    expect(question.locator("[data-part=file]")).to_have_text("notes.md")
    expect(question.locator("[data-part=bubble]")).to_be_hidden()
    wait_answer(page)
    expect(page.locator("#chat-list")).to_contain_text("notes.md")  # a chat of files only is named after them

    question.get_by_role("button", name="Edit message").click()
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.md"])  # the message's files stay
    with page.expect_request(lambda r: r.url.endswith("/api/converse")) as asked:
        ask(page, "Summarize it.")
    assert sent_text(asked.value) == f"File: notes.md\n````markdown\n{NOTES}````\n\nSummarize it."
    wait_answer(page)
    assert recorded_page.errors == []


def test_a_file_too_big_for_the_context_is_refused_with_its_count(
    recorded_page: RecordedPage, small_server: str
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, small_server)
    set_settings(page, {"Max tokens": "16"})
    page.set_input_files("#attach-file", [file("big.txt", BIG)])
    note = page.locator("#attach-note")
    refusal = re.compile(r"^big\.txt is ([\d,]+) tokens; this chat's model takes 512, 16 of them kept for the answer$")
    expect(note).to_have_text(refusal, timeout=30_000)
    counted = refusal.match(note.text_content() or "")
    assert counted is not None
    tokens = int(counted.group(1).replace(",", ""))
    assert N_CTX < tokens < 2 * N_CTX
    expect(pending(page)).to_be_hidden()
    page.get_by_role("button", name="Send").click()  # nothing typed, nothing attached: nothing to send
    expect(page.locator("li[data-role]")).to_have_count(0)
    assert not [url for url in recorded_page.requests if url.endswith("/api/converse")]
    assert recorded_page.errors == []



def test_a_pdf_is_sent_as_its_pages_text_and_unreadable_ones_get_a_line_each(
    recorded_page: RecordedPage, small_server: str
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, small_server)
    assert not [url for url in recorded_page.requests if PYPDF in url]  # not loaded at start-up
    set_settings(page, {"Max tokens": "16"})
    box = page.get_by_role("textbox", name="Message")
    box.fill("A draft")
    page.set_input_files(
        "#attach-file",
        [
            file("report.pdf", REPORT_PDF, "application/pdf"),
            file("scan.pdf", pdf(SCAN), "application/pdf"),
            file("broken.pdf", REPORT_PDF[: len(REPORT_PDF) // 2], "application/pdf"),
            # The page's Pyodide has no AES for pypdf (no `cryptography`); RC4 it can do.
            file("aes.pdf", encrypted(pdf("Secret."), "AES-128"), "application/pdf"),
        ],
    )
    note = page.locator("#attach-note")
    expect(note).to_contain_text("aes.pdf", timeout=30_000)  # the last one: all are read
    assert note.inner_text().split("\n") == [
        "scan.pdf: no text in it (a scanned PDF?); nothing was attached",
        "broken.pdf: not a PDF that can be read (Stream has ended unexpectedly); nothing was attached",
        "aes.pdf: encrypted with AES, which this page cannot decrypt; nothing was attached",
    ]
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["report.pdf"])
    expect(box).to_have_value("A draft")  # nothing typed is lost
    assert len([url for url in recorded_page.requests if PYPDF in url]) == 1

    with page.expect_request(lambda r: r.url.endswith("/api/converse")) as asked:
        ask(page, "What is on page 2?")
    assert sent_text(asked.value) == (
        "File: report.pdf\n```\n"
        "File: report.pdf, page 1\nQuarterly report\nSales rose by 3 points.\n\n"
        "File: report.pdf, page 2\nCosts fell (a little).\n"
        "```\n\nWhat is on page 2?"
    )
    question = page.locator("li[data-role=user]").last
    expect(question.locator("[data-part=file]")).to_have_text("report.pdf")
    wait_answer(page)
    assert_only_loopback(recorded_page)
    assert recorded_page.errors == []


def test_pdfs_are_refused_saying_so_when_the_pdf_reader_cannot_be_loaded(
    recorded_page: RecordedPage, small_server: str
) -> None:
    page = recorded_page.page
    refused: list[str] = []

    def fail(route: Any) -> None:
        refused.append(route.request.url)
        route.abort()

    page.route(f"**/{PYPDF}*", fail)
    open_chat(recorded_page, small_server)
    set_settings(page, {"Max tokens": "16"})
    page.set_input_files(
        "#attach-file",
        [file("report.pdf", REPORT_PDF, "application/pdf"), file("notes.txt", "still attached")],
    )
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["notes.txt"], timeout=30_000)
    expect(page.locator("#attach-note")).to_have_text(
        re.compile(r"^report\.pdf: the PDF reader could not be loaded \(.+\); nothing was attached$")
    )
    assert refused
    assert_only_loopback(recorded_page)
    assert recorded_page.errors == []
