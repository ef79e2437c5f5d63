"""The sidebar in real headless Chromium on the real server: chats pinned and by date, each with its
full title and a "⋯" menu (Pin, Rename in place, Export, Delete through our own dialog), a dot
while an answer streams, one Tab stop for the list with arrows within it, and the skip link.

The chats are seeded by importing an all-chats export whose dates are days back, so no answer of
the model is needed; the clock is the real one, in UTC.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from client.library import EXPORT_ALL_FORMAT, EXPORT_FORMAT
from client.state import TITLE_CHARS, clip
from tests.browser.helpers import AXE, PYTHON_READY_S, RUN_AXE, VIEWPORT, ask, chat_action, chat_rows, last_answer
from tests.fakes import SlowStream

DAY = 86_400
WEATHER = "Weather in Oslo"
RECIPES = "Recipes for a quick weeknight dinner with leftovers from the fridge"
CHAPTERS = "Chapter summaries for my book club"
NOTES = "Old notes"
KEPT = "Kept for later"
# (title, days back, pinned), in the order they are listed.
SEEDED = [(KEPT, 100, True), (WEATHER, 0, False), (RECIPES, 1, False), (CHAPTERS, 3, False), (NOTES, 40, False)]


def export_of(chats: Sequence[tuple[str, float, bool]]) -> str:
    now = time.time()
    return json.dumps(
        {
            "format": EXPORT_ALL_FORMAT,
            "chats": [
                {
                    "format": EXPORT_FORMAT,
                    "title": "",  # named after its first message
                    "turns": [{"user": True, "text": title}, {"user": False, "text": "Sure."}],
                    "updated": now - days * DAY,
                    "pinned": pinned,
                }
                for title, days, pinned in chats
            ],
        }
    )


class Page:
    """A page of its own (UTC; axe may be injected), with every native dialog recorded."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", bypass_csp=True)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.native_dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("dialog", self._native)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # Python tracebacks, which PyScript reports on the console.
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _native(self, dialog: Any) -> None:
        self.native_dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, seeded: str, tmp_path: Path) -> None:
        page = self.page
        page.goto(self.base_url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
        seed = tmp_path / "seed.json"
        seed.write_text(seeded)
        page.get_by_label("Import chat (JSON or Markdown)").set_input_files(str(seed))
        expect(chat_rows(page)).to_have_count(len(SEEDED))

    def axe(self) -> list[str]:
        self.page.add_script_tag(path=str(AXE))
        violations: list[str] = self.page.evaluate(RUN_AXE)
        return violations

    def check_clean(self) -> None:
        assert self.native_dialogs == []  # no prompt, confirm or alert: our own UI only
        assert self.errors == []
        for url in self.requests:
            assert url.startswith(("http://127.0.0.1:", "data:", "blob:")), url


@pytest.fixture
def own_page(chromium: Any, live_server: str) -> Iterator[Page]:
    opened = Page(chromium, live_server)
    yield opened
    opened.context.close()


def headings(page: Any) -> list[str]:
    return [str(text) for text in page.locator("#chat-list h3").all_inner_texts()]


def section(page: Any, name: str) -> Any:
    """The titles listed under the heading `name`."""
    listed = page.get_by_role("navigation", name="Chats").get_by_role("list", name=name, exact=True)
    return listed.locator("button[data-action=open]")


def test_sections_titles_and_the_chat_menu(own_page: Page, tmp_path: Path) -> None:
    own_page.open(export_of(SEEDED), tmp_path)
    page = own_page.page
    rows = chat_rows(page)
    assert headings(page) == ["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"]
    expect(section(page, "Pinned")).to_have_text([KEPT])
    expect(section(page, "Yesterday")).to_contain_text("Recipes for a quick")
    expect(section(page, "Older")).to_have_text([NOTES])

    # Titles use the row's width, clipped with the whole (short) title as a tooltip.
    weather = page.get_by_role("button", name=WEATHER, exact=True)
    recipes = rows.filter(has_text="Recipes for a quick").get_by_role("button").first
    clipped = recipes.evaluate("b => b.firstChild.scrollWidth > b.firstChild.clientWidth")
    assert clipped and recipes.get_attribute("title") == clip(RECIPES, TITLE_CHARS)
    assert weather.evaluate("b => b.firstChild.scrollWidth <= b.firstChild.clientWidth")
    assert weather.get_attribute("title") == WEATHER
    assert (weather.bounding_box() or {"width": 0})["width"] > 160  # it was 76 px beside three buttons

    # The "⋯" menu: shown on hover, arrow keys within (wrapping), Escape back to its button.
    more = page.get_by_role("button", name=f"Actions for {WEATHER}")
    expect(more).to_have_css("opacity", "0")
    rows.filter(has_text=WEATHER).hover()
    expect(more).to_have_css("opacity", "1")
    more.click()
    menu = page.get_by_role("menu", name=f"Actions for {WEATHER}")
    items = menu.get_by_role("menuitem")
    expect(items).to_have_text(["Pin", "Rename", "Export as Markdown (.md)", "Export as JSON (.json)", "Delete"])
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(items.first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(items.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(items.last).to_be_focused()
    page.keyboard.press("Home")
    expect(items.first).to_be_focused()
    assert own_page.axe() == []  # with the menu open
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(more).to_be_focused()
    expect(more).to_have_attribute("aria-expanded", "false")
    # A click elsewhere closes it too; pressing its button again closes it.
    more.click()
    expect(menu).to_be_visible()
    more.click()
    expect(menu).to_be_hidden()

    # Pin moves it to the pinned section (and "Today", now empty, goes).
    chat_action(page, WEATHER, "Pin")
    expect(section(page, "Pinned")).to_have_text([WEATHER, KEPT])  # newest first
    assert "Today" not in headings(page)
    expect(page.get_by_role("button", name=f"Actions for {WEATHER}")).to_be_focused()  # focus went along
    chat_action(page, WEATHER, "Unpin")
    expect(section(page, "Today")).to_have_text([WEATHER])

    # Rename in place: Enter saves, Escape cancels.
    chat_action(page, CHAPTERS, "Rename")
    name = page.get_by_role("textbox", name="Chat name")
    expect(name).to_be_focused()
    expect(name).to_have_value(CHAPTERS)
    name.fill("Book club")
    name.press("Enter")
    renamed = page.get_by_role("button", name="Book club", exact=True)
    expect(renamed).to_be_focused()
    chat_action(page, "Book club", "Rename")
    page.keyboard.type("Not this")
    page.keyboard.press("Escape")
    expect(renamed).to_be_focused()
    expect(section(page, "Previous 7 days")).to_have_text(["Book club"])

    # Export the chat of the menu (not the open one).
    with page.expect_download() as download:
        chat_action(page, NOTES, "Export as Markdown (.md)")
    assert download.value.suggested_filename == "old-notes.md"
    assert Path(download.value.path()).read_text().startswith("# Old notes")

    # Delete asks in our dialog, naming the chat; Cancel (focused first) keeps it.
    chat_action(page, NOTES, "Delete")
    asking = page.get_by_role("dialog", name="Delete this chat?")
    expect(asking).to_contain_text(f"“{NOTES}” and all its messages will be deleted.")
    expect(asking.get_by_role("button", name="Cancel")).to_be_focused()
    assert own_page.axe() == []  # with the dialog open
    page.keyboard.press("Escape")
    expect(asking).to_be_hidden()
    expect(rows).to_have_count(len(SEEDED))
    chat_action(page, NOTES, "Delete")
    asking.get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(len(SEEDED) - 1)
    assert "Older" not in headings(page)

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
    assert headings(page) == ["Pinned", "Today", "Yesterday", "Previous 7 days"]
    expect(section(page, "Previous 7 days")).to_have_text(["Book club"])
    own_page.check_clean()


def test_one_tab_stop_arrows_within_and_the_skip_link(own_page: Page, tmp_path: Path) -> None:
    own_page.open(export_of(SEEDED), tmp_path)
    page = own_page.page
    listed = page.locator("#chat-list")
    # Of all the list's controls, one takes Tab: the open chat's (the import opened the first listed).
    assert listed.locator("button:not([tabindex='-1'])").count() == 1
    kept = page.get_by_role("button", name=KEPT, exact=True)
    expect(kept).to_have_attribute("tabindex", "0")
    page.get_by_role("searchbox", name="Search chats (Ctrl+K)").focus()
    page.keyboard.press("Tab")
    expect(kept).to_be_focused()
    page.keyboard.press("Tab")  # out of the list at once
    assert not page.evaluate("document.getElementById('chat-list').contains(document.activeElement)")
    page.keyboard.press("Shift+Tab")
    expect(kept).to_be_focused()

    titles = [KEPT, WEATHER, RECIPES, CHAPTERS, NOTES]
    buttons = [listed.locator("button[data-action=open]").nth(i) for i in range(len(titles))]
    page.keyboard.press("ArrowDown")
    expect(buttons[1]).to_be_focused()
    page.keyboard.press("ArrowDown")  # across a section's end
    expect(buttons[2]).to_be_focused()
    page.keyboard.press("End")
    expect(buttons[4]).to_be_focused()
    page.keyboard.press("ArrowDown")  # stays at the end
    expect(buttons[4]).to_be_focused()
    page.keyboard.press("Home")
    expect(buttons[0]).to_be_focused()
    page.keyboard.press("ArrowDown")
    # Tab leaves from the chat last visited, and comes back to it.
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    expect(buttons[1]).to_be_focused()
    assert listed.locator("button:not([tabindex='-1'])").count() == 1

    # Right to its "⋯" (shown while focused), Enter opens the menu, Escape back, Left to the title.
    more = page.get_by_role("button", name=f"Actions for {WEATHER}")
    page.keyboard.press("ArrowRight")
    expect(more).to_be_focused()
    expect(more).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("menuitem", name="Pin")).to_be_focused()
    page.keyboard.press("Escape")
    expect(more).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(buttons[1]).to_be_focused()
    page.keyboard.press("Shift+F10")  # the context-menu key
    expect(page.get_by_role("menu", name=f"Actions for {WEATHER}")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # opens the chat
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text([WEATHER])

    # The skip link: the page's first Tab stop, seen when focused, to the message box.
    page.locator("body").evaluate("b => { b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex') }")
    page.keyboard.press("Tab")  # from the top of the page
    skip = page.get_by_role("link", name="Skip to the message box")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 20
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    own_page.check_clean()


def test_a_dot_marks_the_chat_whose_answer_streams(own_page: Page, tmp_path: Path, slow_stream: SlowStream) -> None:
    own_page.open(export_of(SEEDED), tmp_path)
    page = own_page.page
    page.route("**/api/converse", lambda route: route.continue_(url=slow_stream.url))
    page.get_by_role("button", name="New chat").click()
    ask(page, "Tell me everything")
    expect(last_answer(page)).to_contain_text("tick tick")
    row = chat_rows(page).filter(has_text="Tell me everything")
    dot = row.get_by_role("img", name="answering")
    expect(dot).to_be_visible()
    expect(page.get_by_role("button", name="Tell me everything answering")).to_be_visible()  # heard with the title
    expect(chat_rows(page).get_by_role("img", name="answering")).to_have_count(1)
    # Working in the list goes on while it streams.
    chat_action(page, WEATHER, "Pin")
    expect(section(page, "Pinned")).to_have_text([WEATHER, KEPT])  # newest first
    page.get_by_role("button", name="Stop").click()
    expect(dot).to_have_count(0)
    own_page.check_clean()
