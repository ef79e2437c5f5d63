"""The header in real headless Chromium, light and dark, from a phone to a wide screen: it spans the
main area beside the sidebar, none of its items overlap or spill out of their boxes, the model's
name shows whole wherever there is room, the gauge shows its number on a phone too, and Export
is one menu. The answer (with its token count) comes from a stand-in, so the gauge shows at once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import ANSWER_S, AXE, RUN_AXE, ask, done, sse, wait_answer
from tests.harness import ROOT

WIDTHS = [(800, 700), (1280, 800), (1920, 1080), (390, 844)]  # the last: a phone
ITEMS = "#toggle-chats, header [aria-hidden=true], header h1, header h1 + span, #model-picker, #context-gauge, " \
    "#context-text, #export-chat, #open-chat-settings, #open-settings"  # fmt: skip

# Each shown header item's box, and whether its text spills out of it.
MEASURE = """(selector) => [...document.querySelectorAll(selector)]
  .filter(e => e.checkVisibility() && getComputedStyle(e).position !== 'absolute')
  .map(e => { const r = e.getBoundingClientRect();
    return {id: e.id || e.tagName, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
            spills: e.tagName !== 'SPAN' && e.scrollWidth > e.clientWidth + 1}; })"""
# The width the model picker would take with all the room it wants.
NATURAL = """(select) => { const c = select.cloneNode(true); c.value = select.value;
  c.style.maxWidth = 'none'; c.style.position = 'absolute'; c.style.visibility = 'hidden';
  document.body.append(c); const w = c.getBoundingClientRect().width; c.remove(); return w; }"""


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two boxes share more than an edge."""
    across = a["left"] < b["right"] - 0.5 and b["left"] < a["right"] - 0.5
    return across and a["top"] < b["bottom"] - 0.5 and b["top"] < a["bottom"] - 0.5


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_header_fits_at_every_width(chromium: Any, live_server: str, scheme: str) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(live_server + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=ANSWER_S)
        body = sse(("token", {"text": "Rome."}), done(prompt_tokens=1500, completion_tokens=23))
        page.route("**/api/converse", lambda r: r.fulfill(status=200, content_type="text/event-stream", body=body))
        ask(page, "What is the capital of Italy?")
        wait_answer(page)
        expect(page.get_by_role("meter", name="Context")).to_be_visible()
        picker = page.get_by_role("combobox", name="Model")
        expect(picker).to_be_visible()
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            header = page.locator("header").bounding_box()
            nav = page.locator("#sidebar")
            main_left = (nav.bounding_box() or {"width": 0})["width"] if nav.is_visible() else 0
            assert header is not None
            # Across the whole main area, not the 768 px chat column.
            assert abs(header["x"] - main_left) <= 1 and abs(header["x"] + header["width"] - width) <= 1, width
            items = page.evaluate(MEASURE, ITEMS)
            shown = {item["id"] for item in items}
            assert {"model-picker", "context-gauge", "context-text", "export-chat", "open-settings"} <= shown, width
            for n, item in enumerate(items):
                assert not item["spills"], (width, item)
                assert header["x"] - 0.5 <= item["left"] and item["right"] <= header["x"] + header["width"] + 0.5
                assert header["y"] - 0.5 <= item["top"] and item["bottom"] <= header["y"] + header["height"] + 0.5
                for other in items[n + 1 :]:
                    assert not overlap(item, other), (width, item, other)
            expect(page.locator("#context-text")).to_have_text(re.compile(r"^1,523 / [\d,]+ tokens$"))  # phones too
            if width >= 800:  # room enough: the model's name shows whole
                assert (picker.bounding_box() or {"width": 0})["width"] >= picker.evaluate(NATURAL) - 0.5, width
            page.screenshot(path=str(ROOT / "test-results" / f"header-{scheme}-{width}.png"))

        # Export: one menu of the formats.
        page.set_viewport_size({"width": 1280, "height": 800})
        page.get_by_role("button", name="Export", exact=True).click()
        menu = page.get_by_role("menu", name="Export")
        expect(menu.get_by_role("menuitem")).to_have_text(["Export as Markdown (.md)", "Export as JSON (.json)"])
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(RUN_AXE) == []
        with page.expect_download() as download:
            menu.get_by_role("menuitem", name="Export as JSON (.json)").click()
        assert download.value.suggested_filename == "what-is-the-capital-of-italy.json"
        expect(menu).to_be_hidden()
        expect(page.get_by_role("button", name="Export", exact=True)).to_be_focused()
    finally:
        context.close()
