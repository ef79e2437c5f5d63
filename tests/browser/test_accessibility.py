"""axe-core (from node_modules, injected from disk) finds no violations, light or dark."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chat_page_has_no_axe_violations(chromium, live_server: str, scheme: str) -> None:
    assert AXE.is_file(), "run `npm ci` first"
    context = chromium.new_context(viewport={"width": 900, "height": 600}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(live_server + "/")
        expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=60_000)
        page.get_by_role("textbox", name="Message").fill("Hello")
        page.keyboard.press("Enter")
        # Check with both bubbles on screen: an answer (streaming or done) is enough.
        expect(page.locator("li[data-role=model]").first).not_to_have_attribute(
            "data-status", "pending", timeout=60_000
        )
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "axe.run().then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes[0].target}`))"
        )
        assert violations == []
    finally:
        context.close()
