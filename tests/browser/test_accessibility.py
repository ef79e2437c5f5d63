"""axe-core (from node_modules, injected from disk) finds no violations, light or dark, wide or
narrow, with a chat (an answer in two versions) in the sidebar and with the Settings and Chat settings
dialogs open.
The light and dark runs also take screenshots, into test-results/ (ignored by git): copy them to
docs/ for the README."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import AXE, RUN_AXE
from tests.harness import ROOT

SCREENSHOTS = {"light": ROOT / "test-results" / "screenshot.png", "dark": ROOT / "test-results" / "screenshot-dark.png"}


@pytest.mark.parametrize(
    ("scheme", "width"), [("light", 1100), ("dark", 1100), ("light", 360)], ids=["light", "dark", "narrow"]
)
def test_chat_page_has_no_axe_violations(chromium: Any, live_server: str, scheme: str, width: int) -> None:
    assert AXE.is_file(), "run `npm ci` first"
    # bypass_csp: axe is injected as an inline script, which the page's own policy forbids.
    context = chromium.new_context(viewport={"width": width, "height": 700}, color_scheme=scheme, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(live_server + "/")
        expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=60_000)
        expect(page.locator("body")).to_have_attribute("data-markdown", "ready", timeout=60_000)
        page.get_by_role("button", name="Settings", exact=True).click()
        page.get_by_label("Max tokens", exact=True).fill("24")
        page.get_by_role("button", name="Save settings").click()
        page.get_by_role("textbox", name="Message").fill("What is the capital of Italy?")
        page.keyboard.press("Enter")
        # Check with both bubbles, their buttons, the stats and a version switcher on screen.
        answer = page.locator("li[data-role=model]").first
        expect(answer).to_have_attribute("data-status", "done", timeout=60_000)
        page.get_by_role("button", name="Regenerate").click()
        expect(answer.locator("[data-part=version]")).to_have_text("2/2")
        expect(answer).to_have_attribute("data-status", "done", timeout=60_000)
        page.add_script_tag(path=str(AXE))
        assert page.evaluate(RUN_AXE) == []
        if width > 400:
            page.screenshot(path=str(SCREENSHOTS[scheme]))
        else:
            page.get_by_role("button", name="Chats", exact=True).click()
            assert page.evaluate(RUN_AXE) == []
            page.get_by_role("button", name="Close chats").click()
        page.get_by_role("button", name="Settings", exact=True).click()
        expect(page.get_by_role("dialog", name="Settings")).to_be_visible()
        assert page.evaluate(RUN_AXE) == []
        page.get_by_role("dialog", name="Settings").get_by_role("button", name="Cancel").click()
        if width < 640:  # no room in the header: Chat settings is in the Chats drawer
            page.get_by_role("button", name="Chats", exact=True).click()
        page.get_by_role("button", name="Chat settings").click()
        expect(page.get_by_role("dialog", name="Chat settings")).to_be_visible()
        assert page.evaluate(RUN_AXE) == []
    finally:
        context.close()
