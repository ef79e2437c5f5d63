"""Start-up phases and the type-ahead rule (client.boot), checked on CPython, and their HTML half."""

from __future__ import annotations

import asyncio
import sys
from html.parser import HTMLParser
from pathlib import Path
from unittest.mock import patch

import pytest

from client import boot
from client.boot import TypeAhead, take
from tests.harness import run_async

INDEX = Path(__file__).resolve().parents[2] / "client" / "index.html"


# The type-ahead rule: a final newline is Enter's, so the text before it was sent.


def test_a_box_ending_in_enters_newline_holds_a_sent_message() -> None:
    assert take("What is 2+2?\n", clicked=False) == TypeAhead("What is 2+2?", "")


def test_only_the_final_newline_is_enters() -> None:
    # Shift+Enter newlines typed before it are part of the message, as they are after boot.
    assert take("line one\nline two\n", clicked=False) == TypeAhead("line one\nline two", "")
    assert take("ends in a blank line\n\n", clicked=False) == TypeAhead("ends in a blank line\n", "")


def test_a_draft_is_left_alone() -> None:
    assert take("still typing", clicked=False) == TypeAhead(None, "still typing")
    assert take("two\nlines", clicked=False) == TypeAhead(None, "two\nlines")
    assert take("", clicked=False) == TypeAhead(None, "")


def test_send_pressed_before_python_sends_the_box() -> None:
    assert take("hello", clicked=True) == TypeAhead("hello", "")
    assert take("hello\n", clicked=True) == TypeAhead("hello", "")  # Enter and Send: one message


@pytest.mark.parametrize("box", ["\n", "   \n", "", "  "])
def test_a_blank_message_is_not_sent(box: str) -> None:
    """As after boot: Enter or Send on a blank box sends nothing; Enter's newline is dropped."""
    for clicked in (False, True):
        found = take(box, clicked=clicked)
        assert found.message is None
        assert found.box == box.removesuffix("\n")


def test_what_was_sent_leaves_the_box_empty_so_a_reload_cannot_send_it_again() -> None:
    first = take("once\n", clicked=False)
    assert first.message == "once"
    assert take(first.box, clicked=False).message is None


# Start-up in slices, and work that waits for a pause in typing.


def looks_until_done(names: tuple[str, ...], budget_s: float) -> int:
    """How many times another task got to run before `import_sliced` was done."""

    async def run() -> int:
        looks = 0
        task = asyncio.ensure_future(boot.import_sliced(names, budget_s))
        while not task.done():
            looks += 1
            await asyncio.sleep(0)
        await task
        return looks

    return run_async(run())


def test_import_sliced_imports_every_name_and_yields_once_a_slice_is_spent() -> None:
    names = ("json", "html.parser", "client.nodes")
    assert looks_until_done(names, 0.0) > len(names)  # it gave way after every import
    assert all(name in sys.modules for name in names)
    assert looks_until_done(names, 3600.0) == 1  # all in one go: done at the first look


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pause_in_typing_comes_once_no_key_was_pressed_for_the_quiet_time() -> None:
    clock = Clock()
    typing = boot.Typing(clock)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    async def run() -> None:
        await typing.pause(0.5)  # nothing pressed yet: at once
        typing.pressed()
        clock.now += 0.2
        await typing.pause(0.5)  # waits out the rest of the quiet time

    with patch("asyncio.sleep", fake_sleep):
        run_async(run())
    assert waits[0] == 0  # even at once, a browser task of its own
    assert waits[-1] == pytest.approx(0.3)
    assert clock.now - typing.last >= 0.5


# Phases: the names the bench reads, and the labels the user sees.


def test_marks_are_named_for_the_bench_in_boot_order() -> None:
    assert boot.MARKS == (
        "snake:interpreter-ready",
        "snake:packages-installed",
        "snake:modules-imported",
        "snake:first-render",
        "snake:ready",
    )


def test_every_mark_names_the_next_phase_and_the_last_says_ready() -> None:
    assert set(boot.LABELS) == set(boot.MARKS)
    assert boot.LABELS[boot.READY] == "Ready."
    assert boot.PHASES[0] == boot.STARTING and boot.PHASES[-1] == "Ready."
    assert len(boot.PHASES) == len(set(boot.PHASES)) >= 3  # named phases, each shown once


class Elements(HTMLParser):
    """Attributes and text of the page's elements that have an id."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id")
        if element_id:
            self.attrs[element_id] = found
            self.text[element_id] = ""
        if tag not in ("input", "link", "meta"):
            self._open.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("input", "link", "meta"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.text[element_id] += data


@pytest.fixture(scope="module")
def page() -> Elements:
    elements = Elements()
    elements.feed(INDEX.read_text())
    return elements


def test_the_status_line_names_the_first_phase_before_python(page: Elements) -> None:
    assert page.attrs[boot.STATUS_ID].get("role") == "status"
    assert page.text[boot.STATUS_ID].strip() == boot.STARTING
    assert boot.STATUS_ID in page.text and boot.LOADING_ID in page.text


def test_the_box_and_send_wait_for_python_and_the_box_keeps_no_old_draft(page: Elements) -> None:
    """Closed until our first line (client.boot.open_box): Pyodide's start would hold up a keystroke."""
    box = page.attrs[boot.BOX_ID]
    assert "disabled" in box and "readonly" not in box
    assert "disabled" in page.attrs[boot.SEND_ID]
    assert box.get("autocomplete") == "off"


def test_send_before_the_app_opens_the_pending_popover_without_submitting(page: Elements) -> None:
    send = page.attrs[boot.SEND_ID]
    assert send.get("type") == "button"  # a submit button would reload the page, and never opens a popover
    assert send.get("popovertarget") == boot.PENDING_ID and send.get("popovertargetaction") == "show"
    assert page.attrs[boot.PENDING_ID].get("popover") == "manual"  # no light dismiss: a click stays recorded
