"""Per-chat settings on the real page, server and model: a chat's own multi-line system prompt and a
sampling preset reach /api/converse exactly (read from the request's POST body), another chat keeps
sending the global settings, a preset saved in Settings is offered in Chat settings, all of it
survives a reload, and axe finds nothing wrong with either dialog open."""

from __future__ import annotations

from typing import Any

import msgspec
from playwright.sync_api import expect

from client.presets import BUILT_IN
from tests.browser.helpers import AXE, RUN_AXE, RecordedPage, ask, open_chat, set_settings, wait_answer

# Leading spaces, a blank line and a trailing newline: all of it must arrive as typed.
OWN = "You are a pirate.\n\n  Answer in one word,\n  always.\n"
GLOBAL = "You are terse."
MINE = {"Temperature": "0.25", "Top-k": "7"}  # the user's own preset "Cold"
TIMEOUT = 60_000


def sent_params(page: Any, text: str) -> dict[str, Any]:
    """Send `text` in the open chat; the `params` of its POST to /api/converse, once answered."""
    with page.expect_request("**/api/converse") as sent:
        ask(page, text)
    wait_answer(page)
    params: dict[str, Any] = sent.value.post_data_json["params"]
    return params


def chat_dialog(page: Any) -> Any:
    page.get_by_role("button", name="Chat settings").click()
    dialog = page.get_by_role("dialog", name="Chat settings")
    expect(dialog).to_be_visible()
    return dialog


def configure(page: Any, system: str | None, preset: str) -> None:
    """Chat settings for the open chat: `system` None = the one in Settings, "" = none."""
    dialog = chat_dialog(page)
    if system is None:
        dialog.get_by_role("radio", name="The one in Settings").check()
    elif system:
        dialog.get_by_role("textbox", name="System prompt for this chat").fill(system)
        expect(dialog.get_by_role("radio", name="Its own, below")).to_be_checked()  # typing picked it
    else:
        dialog.get_by_role("radio", name="None for this chat").check()
    dialog.get_by_role("combobox", name="Sampling preset").select_option(preset or "Default settings")
    dialog.get_by_role("button", name="Save chat settings").click()
    expect(dialog).to_be_hidden()


def open_listed(page: Any, title: str) -> None:
    page.get_by_role("button", name=title, exact=True).click()
    expect(page.locator("li[data-role=user] [data-part=bubble]").first).to_have_text(title)


def no_axe_violations(page: Any) -> None:
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []


def test_a_chats_own_system_prompt_and_preset_are_sent_kept_and_survive_reload(chromium: Any, live_server: str) -> None:
    recorded = RecordedPage(chromium, bypass_csp=True)
    page = recorded.page
    try:
        open_chat(recorded, live_server)
        set_settings(page, {"System prompt": GLOBAL, "Max tokens": "4"})

        # A preset of the user's own, saved from Settings (the dialog is then cancelled: global settings unchanged).
        page.get_by_role("button", name="Settings", exact=True).click()
        settings = page.get_by_role("dialog", name="Settings")
        for label, value in MINE.items():
            settings.get_by_label(label, exact=True).fill(value)
        settings.get_by_role("textbox", name="Preset name").fill("Cold")
        settings.get_by_role("button", name="Save as preset").click()
        expect(settings.get_by_role("status")).to_have_text("Saved preset Cold: pick it in Chat settings.")
        expect(settings.get_by_role("list", name="Your presets")).to_contain_text("Temperature 0.25 · Top-k 7")
        settings.get_by_text("Temperature 0.25 · Top-k 7").click()  # a row's text, not its button: no error
        settings.get_by_role("textbox", name="Preset name").fill("Balanced")
        settings.get_by_role("button", name="Save as preset").click()
        expect(settings.get_by_role("status")).to_contain_text("built-in preset")
        no_axe_violations(page)  # the Settings dialog with a preset listed
        settings.get_by_role("button", name="Cancel").click()

        # Chat one: its own multi-line prompt and a built-in preset, over the global max_tokens.
        dialog = chat_dialog(page)
        expect(dialog.get_by_role("radio", name="The one in Settings")).to_be_checked()  # a new chat: defaults
        expect(dialog.get_by_text(f"From Settings: “{GLOBAL}”")).to_be_visible()
        expect(dialog.get_by_role("combobox", name="Sampling preset")).to_have_value("")
        expect(dialog.get_by_role("option", name="Cold")).to_be_attached()  # the user's own is offered
        no_axe_violations(page)
        dialog.get_by_role("button", name="Cancel").click()
        configure(page, OWN, "Creative")
        opener = page.get_by_role("button", name="Chat settings")
        expect(opener).to_have_accessible_description("This chat has its own system prompt and the Creative preset.")
        first = {"system": OWN, "max_tokens": 4, **msgspec.to_builtins(BUILT_IN["Creative"])}
        assert sent_params(page, "Ahoy there") == first

        # Chat two: the global settings, then no system prompt and the user's preset.
        page.get_by_role("button", name="New chat").click()
        expect(opener).to_have_accessible_description("")  # a new chat starts on the defaults
        assert sent_params(page, "Second chat") == {"system": GLOBAL, "max_tokens": 4}
        configure(page, "", "Cold")
        second = {"system": "", "max_tokens": 4, "temperature": 0.25, "top_k": 7}  # "": none at all
        assert sent_params(page, "Still there?") == second

        # All of it survives a reload: the chats' settings, and the user's preset.
        expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=TIMEOUT)
        dialog = chat_dialog(page)  # chat two is the open one
        expect(dialog.get_by_role("radio", name="None for this chat")).to_be_checked()
        expect(dialog.get_by_role("combobox", name="Sampling preset")).to_have_value("Cold")
        dialog.get_by_role("button", name="Cancel").click()
        assert sent_params(page, "After reload") == second
        open_listed(page, "Ahoy there")
        dialog = chat_dialog(page)
        expect(dialog.get_by_role("radio", name="Its own, below")).to_be_checked()
        expect(dialog.get_by_role("textbox", name="System prompt for this chat")).to_have_value(OWN)
        expect(dialog.get_by_role("combobox", name="Sampling preset")).to_have_value("Creative")
        dialog.get_by_role("button", name="Cancel").click()
        assert sent_params(page, "Ahoy again") == first

        # Back to the defaults; and a deleted preset is no longer offered.
        configure(page, None, "")
        assert sent_params(page, "Plain now") == {"system": GLOBAL, "max_tokens": 4}
        page.get_by_role("button", name="Settings", exact=True).click()
        page.get_by_role("button", name="Delete preset: Cold").click()
        expect(page.get_by_role("list", name="Your presets")).to_be_hidden()
        page.get_by_role("dialog", name="Settings").get_by_role("button", name="Cancel").click()
        dialog = chat_dialog(page)
        expect(dialog.get_by_role("option", name="Cold")).to_have_count(0)
        dialog.get_by_role("button", name="Cancel").click()
        # The chat that used it names it no more, nor takes up a new preset of that name.
        open_listed(page, "Second chat")
        expect(opener).to_have_accessible_description("This chat has no system prompt.")
        assert sent_params(page, "Deleted preset") == {"system": "", "max_tokens": 4}
        assert recorded.errors == []
    finally:
        recorded.context.close()
