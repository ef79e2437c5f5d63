"""Opening a 120-message chat from the sidebar in real headless Chromium on the real server: what
is on screen comes first, within 300 ms of the click, and the older messages follow.

Measured in the page (tests/browser/switching.py); on a shared machine one switch can be slow
by noise alone, so the test takes the median of three. `make bench` reports the same measure
over more switches (bench/chat_switch.py).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from playwright.sync_api import expect

from tests.browser import switching
from tests.browser.helpers import RecordedPage, open_chat

SWITCHES = 3


def test_a_long_chat_opens_with_its_end_on_screen_within_300_ms_and_the_rest_follows(
    recorded_page: RecordedPage, live_server: str, tmp_path: Path
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, live_server)
    switching.import_chats(page, tmp_path)
    measured = [switching.switch_ms(page) for _ in range(SWITCHES)]
    print(f"switch to a {switching.MESSAGES}-message chat, (end on screen, all rendered) ms: {measured}")
    times = [on_screen for on_screen, _ in measured]
    assert statistics.median(times) <= switching.TARGET_MS, times

    # Every message ends up rendered, in order, the view still at the bottom; scrolling up shows the first.
    rows = page.locator("#messages > li[data-role]:not([hidden])")
    expect(rows).to_have_count(switching.MESSAGES)
    expect(rows.first.locator("[data-part=bubble]")).to_have_text(switching.LONG)
    expect(rows.nth(1).locator("[data-part=bubble] pre")).to_have_count(2)  # an old answer, as Markdown
    expect(rows.nth(1).locator("[data-part=bubble] table")).to_have_count(1)
    expect(rows.nth(5).locator("[data-part=bubble] h2")).to_have_text("Part 2")
    scroller = page.locator("#chat")
    assert scroller.evaluate("s => s.scrollHeight - s.scrollTop - s.clientHeight") < 2
    scroller.evaluate("s => { s.scrollTop = 0; }")
    expect(rows.first).to_be_in_viewport()
    assert recorded_page.errors == []
