"""What the sidebar decides without a DOM: its sections by date, the keys within the list and its
menus, where a menu goes, and how a title is clipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from client.components.chat_list import PINNED, Row, actions, listing, menu_name, opens_menu
from client.components.menu import MARGIN, place
from client.library import EXPORT_CHOICES, Library
from client.recency import OLDER, TODAY, WEEK, YESTERDAY, section_of
from client.roving import step
from client.state import TITLE_CHARS, Chat, Turn, clip, title_of

TODAY_DATE = date(2025, 3, 10)  # the fixed "now" of these tests
NOON = datetime(2025, 3, 10, 12, tzinfo=UTC)


def utc_day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def chat(chat_id: str, text: str, days_ago: float, busy: bool = False) -> Chat:
    answer = Turn(user=False, text="", status="streaming") if busy else Turn(user=False, text="ok")
    updated = (NOON - timedelta(days=days_ago)).timestamp()
    return Chat(id=chat_id, updated=updated, turns=(Turn(user=True, text=text), answer))


@pytest.mark.parametrize(
    ("day", "section"),
    [
        (date(2025, 3, 10), TODAY),
        (date(2025, 3, 11), TODAY),  # a clock set back since
        (date(2025, 3, 9), YESTERDAY),
        (date(2025, 3, 8), WEEK),
        (date(2025, 3, 3), WEEK),  # seven days ago
        (date(2025, 3, 2), OLDER),
        (date(2024, 3, 10), OLDER),
        (None, OLDER),  # never recorded (an older export)
    ],
)
def test_a_chat_is_in_the_section_of_its_calendar_day(day: date | None, section: str) -> None:
    assert section_of(day, TODAY_DATE) == section


def test_the_list_is_pinned_then_by_date_newest_first_and_filtered_by_the_search() -> None:
    chats = (
        chat("old", "Old times", 40),
        chat("week", "Recipes for dinner", 3),
        chat("yday", "Chapter one notes", 1),
        chat("now", "Write a poem", 0, busy=True),
        chat("now2", "Weather", 0.1),
        chat("pin", "Pinned long ago", 100),
        Chat(id="empty"),  # nothing sent yet: not listed
    )
    library = Library(chats=chats, open_id="yday", pinned=frozenset({"pin"}))
    sections = listing(library, "", TODAY_DATE, utc_day)
    assert [(label, [r.id for r in rows]) for label, rows in sections] == [
        (PINNED, ["pin"]),
        (TODAY, ["now", "now2"]),
        (YESTERDAY, ["yday"]),
        (WEEK, ["week"]),
        (OLDER, ["old"]),
    ]
    rows = {r.id: r for _, rs in sections for r in rs}
    assert rows["now"] == Row("now", "Write a poem", open=False, pinned=False, busy=True)
    assert rows["yday"].open and rows["pin"].pinned and not rows["now2"].busy
    # Sections with nothing in them are left out; the search looks at message text too.
    assert listing(library, "CHAPTER", TODAY_DATE, utc_day) == ((YESTERDAY, (rows["yday"],)),)
    everywhere = listing(library, "ok", TODAY_DATE, utc_day)
    assert [label for label, _ in everywhere] == [PINNED, TODAY, YESTERDAY, WEEK, OLDER]
    assert listing(library, "cherries", TODAY_DATE, utc_day) == ()


def test_a_chats_menu_offers_pin_rename_export_and_delete() -> None:
    row = Row("a", "Apples", open=False, pinned=False, busy=False)
    assert actions(row) == (("pin", "Pin"), ("rename", "Rename"), *EXPORT_CHOICES, ("delete", "Delete"))
    assert actions(row._replace(pinned=True))[0] == ("unpin", "Unpin")
    assert [kind for kind, _ in EXPORT_CHOICES] == ["md", "json"]  # what App.export_file takes
    assert menu_name("Apples") == "Actions for Apples"
    assert opens_menu("ContextMenu", shift=False) and opens_menu("F10", shift=True)
    assert not opens_menu("F10", shift=False) and not opens_menu("Enter", shift=False)


@pytest.mark.parametrize(
    ("key", "index", "moved"),
    [("ArrowDown", 0, 1), ("ArrowDown", 4, 4), ("ArrowUp", 0, 0), ("ArrowUp", 3, 2), ("Home", 3, 0), ("End", 1, 4),
     ("a", 1, None), ("Enter", 1, None)],
)  # fmt: skip
def test_arrows_move_within_the_list_and_stop_at_its_ends(key: str, index: int, moved: int | None) -> None:
    assert step(key, index, 5) == moved


def test_arrows_wrap_around_in_a_menu() -> None:
    assert step("ArrowDown", 4, 5, wrap=True) == 0
    assert step("ArrowUp", 0, 5, wrap=True) == 4
    assert step("ArrowDown", 1, 5, wrap=True) == 2
    assert step("ArrowDown", 0, 0, wrap=True) is None  # an empty menu


def test_a_menu_opens_under_its_button_inside_the_window() -> None:
    window = (1000.0, 800.0)
    # Under the button, right edges aligned.
    assert place((900, 10, 930, 40), (224, 200), window) == (930 - 224, 44)
    # No room on the left: kept inside.
    assert place((0, 10, 30, 40), (224, 200), window)[0] == MARGIN
    # No room below: above the button.
    assert place((500, 700, 530, 730), (224, 200), window) == (530 - 224, 700 - 4 - 200)
    # Neither above nor below: under it, where the window can scroll it.
    assert place((500, 100, 530, 130), (224, 760), window)[1] == 134
    # A window narrower than the menu: from its left margin.
    assert place((100, 10, 130, 40), (224, 200), (200, 800))[0] == MARGIN


def test_titles_are_clipped_after_a_whole_word() -> None:
    assert clip("Short title", 60) == "Short title"
    assert clip("x" * 60, 60) == "x" * 60
    assert clip("Recipes for a quick weeknight dinner", 20) == "Recipes for a quick…"
    assert clip("Supercalifragilistic expialidocious", 20) == "Supercalifragilisti…"  # no word ends late enough
    assert len(clip("word " * 40, 30)) <= 30
    text = "Please write " + "a very long question " * 10
    title = title_of(Chat(turns=(Turn(user=True, text=text),)))
    assert len(title) <= TITLE_CHARS and title.endswith("…") and text[len(title) - 1] == " "  # a whole word
