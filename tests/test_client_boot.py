"""Start-up phases (client.boot), checked on CPython, and their HTML half."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from client import boot

INDEX = Path(__file__).resolve().parent.parent / "client" / "index.html"


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
