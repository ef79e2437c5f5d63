"""The small things people notice, on the real page, server and model, at a desktop's and a phone's
size: "Jump to bottom" while scrolled up from a streaming answer; a stopped answer that keeps its
numbers and model after a reload; each message's time on hover and on focus (none for an old chat);
version-switcher arrows big enough to hit; the theme (system, light, dark) applied before Python
starts and kept; Chat settings that never scroll sideways; the prompt template in plain words. Axe
finds nothing wrong along the way."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from client.library import export_json
from client.state import Chat, Turn
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    HeldRuntime,
    RecordedPage,
    ask,
    file,
    last_answer,
    open_chat,
    set_settings,
)
from tests.harness import COUNT

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
LONG = {"Temperature": "0", "Repeat penalty": "1.0", "Max tokens": "2000"}  # a count that goes on (test_resume)
# A chat taller than the view before the count starts. Its one earlier answer counts too, so that
# the model sees counting, not a pile of notes (after forty notes the 270M model once greeted).
TALL = Chat(
    id="tall",
    title="Counting",
    turns=(
        Turn(user=True, text="List the numbers from 1 to 40, one per line."),
        Turn(user=False, text="\n".join(f"- {n}" for n in range(1, 41))),
    ),
)
STATS = re.compile(r"\d+ tokens · [\d.]+ tok/s · first token [\d.]+ s · Stopped")
TALLER = "() => { const c = document.getElementById('chat'); return c.scrollHeight > c.clientHeight + 200 }"
NEAR = 80  # px from the bottom that count as at the bottom (client/components/chat_area.py)


def no_axe_violations(page: Any) -> None:
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []


def from_bottom(page: Any) -> float:
    distance: float = page.locator("#chat").evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight")
    return distance


def answer_grows(page: Any) -> None:
    """Wait until the streaming answer has more text than now."""
    now = len(last_answer(page).locator("[data-part=bubble]").inner_text())
    page.wait_for_function(
        "n => document.querySelector('li[data-role=model]:last-child [data-part=bubble]').innerText.length > n",
        arg=now, timeout=ANSWER_S,
    )


def size_of(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["width"], box["height"]


@SIZES
def test_a_streaming_answer_jumps_stops_with_its_numbers_and_shows_times_and_versions(
    axe_page: RecordedPage, fresh_server: str, size: dict[str, int]
) -> None:
    page = axe_page.page
    page.set_viewport_size(size)
    open_chat(axe_page, fresh_server)
    set_settings(page, LONG)
    jump = page.get_by_role("button", name="Jump to bottom")
    page.get_by_label("Import chat (JSON or Markdown)").set_input_files(file("tall.json", export_json(TALL)))
    expect(page.locator("li[data-role=model]")).to_have_count(1)
    ask(page, COUNT)
    page.wait_for_function(TALLER, timeout=ANSWER_S)
    expect(last_answer(page)).to_have_attribute("data-status", "streaming", timeout=ANSWER_S)
    page.locator("#chat").evaluate("e => e.scrollTop = e.scrollHeight")  # back at the end it follows
    expect(jump).to_be_hidden()  # following the answer: nothing to jump to

    # Scrolled up while it streams: the button shows, and the view stays where the reader put it.
    page.locator("#chat").evaluate("e => e.scrollTop = 0")
    expect(jump).to_be_visible()
    answer_grows(page)
    assert page.locator("#chat").evaluate("e => e.scrollTop") < NEAR
    no_axe_violations(page)

    # Jump: at the bottom, the button gone, and following again as the answer grows.
    jump.click()
    expect(jump).to_be_hidden()
    answer_grows(page)
    assert from_bottom(page) < NEAR

    # Stop: the answer keeps the server's numbers and the model's name, after a reload too.
    page.get_by_role("button", name="Stop").click()
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "stopped")
    note = answer.locator("[data-part=note]")
    expect(note).to_have_text(re.compile(r"gemma.* · " + STATS.pattern, re.IGNORECASE))
    stopped_note = note.inner_text()
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    expect(last_answer(page).locator("[data-part=note]")).to_have_text(stopped_note)

    # Each message's time shows on hover and on focus (a phone has no hover: a tap focuses its buttons).
    user = page.locator("li[data-role=user]").last  # the imported one has no time (the next test)
    stamp = user.locator("time[data-part=time]")
    expect(stamp).to_be_hidden()
    if size is DESKTOP:
        user.locator("[data-part=bubble]").hover()
        expect(stamp).to_be_visible()
        page.mouse.move(0, 0)
        expect(stamp).to_be_hidden()
    user.get_by_role("button", name="Copy message").focus()
    expect(stamp).to_be_visible()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp.get_attribute("datetime") or "")
    expect(stamp).to_have_text(re.compile(r"\d"))
    expect(last_answer(page).locator("time[data-part=time]")).to_have_count(1)

    # Versions: the switcher's arrows are big enough to hit, on a phone for a finger.
    set_settings(page, {"Max tokens": "8"})
    last_answer(page).get_by_role("button", name="Regenerate").click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    expect(last_answer(page).locator("[data-part=version]")).to_have_text("2/2")
    least = 44 if size is PHONE else 24
    for name in ("Previous version", "Next version"):
        width, height = size_of(last_answer(page).get_by_role("button", name=name))
        assert width >= least and height >= least, (name, width, height)
    no_axe_violations(page)
    assert axe_page.errors == []


def test_an_old_chat_without_times_shows_none(axe_page: RecordedPage, live_server: str, tmp_path: Any) -> None:
    """A chat saved before times were kept (an export of one) shows its messages without a time."""
    page = axe_page.page
    old = Chat(turns=(Turn(user=True, text="From before"), Turn(user=False, text="An old answer")), id="old")
    path = tmp_path / "old.json"
    path.write_text(export_json(old))
    assert '"written"' not in path.read_text()
    open_chat(axe_page, live_server)
    page.get_by_label("Import chat (JSON or Markdown)").set_input_files(file("old.json", path.read_text()))
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text("From before")
    page.locator("li[data-role=user]").hover()
    expect(page.locator("li[data-role]")).to_have_count(2)
    expect(page.locator("time[data-part=time]")).to_have_count(0)
    assert axe_page.errors == []


def body_colours(page: Any) -> tuple[str, str]:
    colours: list[str] = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color] }"
    )
    return colours[0], colours[1]


def choose_theme(page: Any, theme: str) -> None:
    page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    dialog.get_by_role("radio", name=theme, exact=True).check()
    dialog.get_by_role("button", name="Cancel").click()  # applied at once, Save or not


@SIZES
def test_the_theme_is_chosen_applied_before_python_and_kept(
    axe_page: RecordedPage, live_server: str, size: dict[str, int]
) -> None:
    page = axe_page.page
    page.set_viewport_size(size)
    page.emulate_media(color_scheme="light")
    open_chat(axe_page, live_server)
    system_light = body_colours(page)
    page.emulate_media(color_scheme="dark")
    system_dark = body_colours(page)
    assert system_light != system_dark  # "System" (the default) follows the system

    choose_theme(page, "Light")
    assert body_colours(page) == system_light  # the system says dark; the choice wins
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    no_axe_violations(page)
    choose_theme(page, "Dark")
    page.emulate_media(color_scheme="light")
    assert body_colours(page) == system_dark
    no_axe_violations(page)

    # Reloaded with Python held back: the theme is there before any Python runs (no flash of light).
    held = HeldRuntime(page)
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert body_colours(page) == system_dark
    assert page.locator("body").get_attribute("data-ready") is None
    held.release()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    page.get_by_role("button", name="Settings", exact=True).click()
    expect(page.get_by_role("radio", name="Dark", exact=True)).to_be_checked()
    page.get_by_role("dialog", name="Settings").get_by_role("button", name="Cancel").click()

    choose_theme(page, "System")
    expect(page.locator("html")).not_to_have_attribute("data-theme", re.compile("."))
    assert body_colours(page) == system_light
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
    assert body_colours(page) == system_light
    assert axe_page.errors == []


LONG_PROMPT = "You are a careful assistant. " * 40 + "x" * 600  # long, and long without a break
OVERFLOW = "e => [e.scrollWidth, e.clientWidth]"


@SIZES
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chat_settings_never_scroll_sideways_and_settings_speak_plainly(
    axe_page: RecordedPage, live_server: str, size: dict[str, int], scheme: str
) -> None:
    page = axe_page.page
    page.set_viewport_size(size)
    page.emulate_media(color_scheme=scheme)
    open_chat(axe_page, live_server)
    set_settings(page, {"System prompt": LONG_PROMPT})

    page.get_by_role("button", name="Settings", exact=True).click()
    settings = page.get_by_role("dialog", name="Settings")
    # The default model has no chat template of its own: the seed's, in words a reader follows.
    expect(settings.get_by_text("Prompt template: Simple Human/Assistant chat (built-in)")).to_be_visible()
    expect(settings).not_to_contain_text("###")
    settings.get_by_role("button", name="Cancel").click()

    if size is PHONE:  # no room in the header: Chat settings is in the Chats drawer
        page.get_by_role("button", name="Chats", exact=True).click()
    page.get_by_role("button", name="Chat settings").click()
    dialog = page.get_by_role("dialog", name="Chat settings")
    expect(dialog).to_be_visible()
    dialog.get_by_role("textbox", name="System prompt for this chat").fill(LONG_PROMPT)
    for part in (dialog, page.locator("#chat-settings-form")):
        scroll, client = part.evaluate(OVERFLOW)
        assert scroll <= client, (scroll, client)
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]
    no_axe_violations(page)
    assert axe_page.errors == []
