"""Tools in the page, on the real server: a tiny model that calls `get_time` whenever tools are
offered, and MCP servers made with the SDK (tests/mcp_server.py), one of whose clocks never answers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from client.state import DENIED, STOPPED_CALL
from tests import tinymodels as tm
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    RecordedPage,
    ask,
    assert_only_loopback,
    last_answer,
    open_chat,
)
from tests.harness import ROOT, start_grammar_tool_server, stop_server, wait_until

ROUNDS = 2  # MAX_TOOL_ROUNDS: the model calls on every round, so the rounds end it
SCREENSHOT = ROOT / "test-results" / "tool-call.png"


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tools")
    server = {"command": sys.executable, "args": ["-m", "tests.mcp_server"], "env": {"PYTHONPATH": str(ROOT)}}
    stuck = {**server, "env": {**server["env"], "STUCK_CLOCK": "1"}}  # type: ignore[dict-item]
    (folder / "mcp.json").write_text(json.dumps({"mcpServers": {"local": server, "stuck": stuck}}))
    proc, url = start_grammar_tool_server(folder, MCP_CONFIG=str(folder / "mcp.json"), MAX_TOOL_ROUNDS=str(ROUNDS))
    wait_until(lambda: {"local", "stuck"} <= {t["server"] for t in httpx.get(f"{url}/api/tools").json()["tools"]})
    yield url
    stop_server(proc)


def converse_bodies(recorded: RecordedPage) -> list[dict[str, Any]]:
    """What the page asks /api/converse, in order, as it asks it."""
    bodies: list[dict[str, Any]] = []
    recorded.page.on("request", lambda r: bodies.append(json.loads(r.post_data or "{}"))
                     if r.url.endswith("/api/converse") else None)
    return bodies


def turn_on(page: Any, server: str, tool: str) -> None:
    page.get_by_role("button", name="Tools").click()
    dialog = page.get_by_role("dialog", name="Tools")
    expect(dialog.get_by_role("group", name=f"MCP server: {server}")).to_be_visible()
    dialog.get_by_role("group", name=f"MCP server: {server}").get_by_label(tool, exact=True).check()
    dialog.get_by_role("button", name="Save tools").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Tools (1)")).to_be_visible()


def waiting(page: Any) -> Any:
    """The call that waits for the user's word."""
    call = last_answer(page).get_by_role("group", name="Tool call: get_time")
    expect(call.get_by_role("button", name="Allow", exact=True)).to_be_visible(timeout=ANSWER_S)
    return call


def results_sent(body: dict[str, Any]) -> list[tuple[str, bool]]:
    last = body["conversation"]["messages"][-1]
    return [(c["result"], c.get("is_error", False)) for c in last.get("calls", [])]


def test_allow_deny_and_allow_for_this_chat_with_the_results_reaching_the_model(
    recorded_page: RecordedPage, tool_server: str, chromium: Any
) -> None:
    page = recorded_page.page
    bodies = converse_bodies(recorded_page)
    open_chat(recorded_page, tool_server)
    page.get_by_role("button", name="Tools").click()
    dialog = page.get_by_role("dialog", name="Tools")
    expect(dialog.get_by_role("group", name="Built in (runs in this page)").get_by_label("python")).to_be_visible()
    expect(dialog.get_by_label("MCP server: stuck")).not_to_be_checked()
    dialog.get_by_role("button", name="Cancel").click()
    turn_on(page, "local", "get_time")

    ask(page, "What time is it?")
    call = waiting(page)
    assert bodies[0]["tools"][0]["name"] == "get_time" and not results_sent(bodies[0])
    expect(call).to_contain_text('"zone": "UTC"')
    call.get_by_role("button", name="Allow", exact=True).click()
    waiting(page).get_by_role("button", name="Deny").click()
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    assert results_sent(bodies[1]) == [("12:00 in UTC", False)]  # the tool's own answer, from the MCP server
    assert results_sent(bodies[2]) == [(DENIED, True)]
    assert len(bodies) == 1 + ROUNDS  # then the model had to answer in words
    expect(answer.locator("[data-part=bubble]")).to_have_text(tm.GRAMMAR_CALL)
    folded = answer.locator("details[data-part=call]")
    expect(folded).to_have_count(2)
    expect(folded.nth(1).locator("summary")).to_have_text("Called get_time · error")
    folded.first.locator("summary").click()
    expect(folded.first).to_contain_text("12:00 in UTC")

    page.get_by_role("button", name="New chat").click()
    turn_on(page, "local", "get_time")
    ask(page, "And now?")
    waiting(page).get_by_role("button", name="Allow for this chat").click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    assert [results_sent(b) for b in bodies[-2:]] == [[("12:00 in UTC", False)]] * 2  # the second ran unasked
    expect(last_answer(page).locator("details[data-part=call]")).to_have_count(ROUNDS)

    page.reload()  # the calls and results are saved with the chat, and so is its choice of tools
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(last_answer(page).locator("details[data-part=call]")).to_have_count(ROUNDS)
    expect(page.get_by_role("button", name="Tools (1)")).to_be_visible()
    assert not recorded_page.errors
    assert_only_loopback(recorded_page)

    # axe: a call waiting for the user's word, with the page's CSP bypassed for axe's inline script
    context = chromium.new_context(viewport={"width": 1000, "height": 700}, bypass_csp=True)
    try:
        checked = context.new_page()
        checked.goto(tool_server + "/")
        expect(checked.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
        turn_on(checked, "local", "get_time")
        ask(checked, "What time is it?")
        waiting(checked)
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(RUN_AXE) == []
        SCREENSHOT.parent.mkdir(exist_ok=True)
        checked.screenshot(path=str(SCREENSHOT))
        checked.get_by_role("button", name="Tools (1)").click()
        assert checked.evaluate(RUN_AXE) == []
    finally:
        context.close()


def test_a_reload_during_a_round_asks_again_and_the_answer_goes_on(
    recorded_page: RecordedPage, tool_server: str
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, tool_server)
    turn_on(page, "local", "get_time")
    ask(page, "What time is it?")
    waiting(page)
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
    waiting(page).get_by_role("button", name="Allow for this chat").click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    expect(last_answer(page).locator("details[data-part=call]")).to_have_count(ROUNDS)


def test_stop_cancels_a_running_call(recorded_page: RecordedPage, tool_server: str) -> None:
    page = recorded_page.page
    open_chat(recorded_page, tool_server)
    turn_on(page, "stuck", "get_time")
    ask(page, "What time is it?")
    waiting(page).get_by_role("button", name="Allow", exact=True).click()
    running = last_answer(page).locator("[data-part=call][data-state=running]")
    expect(running).to_contain_text("Running get_time…")
    page.get_by_role("button", name="Stop").click()
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "stopped")
    expect(answer.locator("details[data-part=call] summary")).to_have_text("Called get_time · error")
    answer.locator("details[data-part=call] summary").click()
    expect(answer.locator("details[data-part=call]")).to_contain_text(STOPPED_CALL)
    expect(page.get_by_role("button", name="Send")).to_be_visible()  # the chat takes a new message
    assert not recorded_page.errors


@pytest.fixture(scope="module")
def python_caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model that calls the built-in python tool; one round, then it must answer in words."""
    proc, url = start_grammar_tool_server(tmp_path_factory.mktemp("python"), tm.PYTHON_CALL, MAX_TOOL_ROUNDS="1")
    yield url
    stop_server(proc)


def test_the_python_tool_runs_in_the_page_once_allowed(recorded_page: RecordedPage, python_caller: str) -> None:
    page = recorded_page.page
    bodies = converse_bodies(recorded_page)
    open_chat(recorded_page, python_caller)
    page.get_by_role("button", name="Tools").click()
    dialog = page.get_by_role("dialog", name="Tools")
    dialog.get_by_label("Built in (runs in this page)").check()  # a server's box turns all of its tools on
    expect(dialog.get_by_label("python", exact=True)).to_be_checked()
    dialog.get_by_role("button", name="Save tools").click()
    ask(page, "What is six times seven?")
    call = last_answer(page).get_by_role("group", name="Tool call: python")
    expect(call).to_contain_text("print(6 * 7)", timeout=ANSWER_S)
    call.get_by_role("button", name="Allow", exact=True).click()
    expect(last_answer(page)).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    [(result, failed)] = results_sent(bodies[1])
    assert result == "Finished.\n\nstdout:\n42" and not failed
    assert_only_loopback(recorded_page)
