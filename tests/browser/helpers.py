"""What the browser tests share: a recorded page, the chat page's own actions, axe-core, and a
hold on Pyodide's start (the fixtures that hand these out are in tests/browser/conftest.py; the
fake /api/converse servers are in tests.fakes)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from client import boot
from tests.harness import ROOT

VIEWPORT = {"width": 900, "height": 600}
PYTHON_READY_S = 60  # generous: a cold Pyodide start on a busy CI machine
ANSWER_S = 60_000  # ms an answer of the real model may take
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = "axe.run().then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes[0].target}`))"
WASM = "**/pyodide.asm.wasm"  # wherever the build puts it (server/static.py)


class RecordedPage:
    """A fresh page (own context: empty cache and storage) that records every request URL."""

    def __init__(self, browser: Any, viewport: dict[str, int] = VIEWPORT, bypass_csp: bool = False) -> None:
        """`bypass_csp`: axe can be injected (an inline script the page's CSP forbids)."""
        self.context = browser.new_context(viewport=viewport, bypass_csp=bypass_csp)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        # Uncaught JS errors, and Python tracebacks (PyScript reports those on the console).
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Traceback" in message.text:
            self.errors.append(message.text)


# -- the chat page --------------------------------------------------------------------------------


def open_chat(recorded: RecordedPage, base_url: str) -> float:
    """Load the page and wait until Python is up; returns the seconds it took."""
    page = recorded.page
    start = time.perf_counter()
    page.goto(base_url + "/")
    # From first paint, the page names what it is doing (tests/browser/test_boot.py: which, when).
    expect(page.get_by_role("status")).to_have_text(re.compile("|".join(map(re.escape, boot.PHASES))))
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    return time.perf_counter() - start


def assert_only_loopback(recorded: RecordedPage) -> None:
    assert recorded.requests, "no requests were recorded"
    for url in recorded.requests:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue  # in-page resources, not network
        assert parts.hostname == "127.0.0.1", f"request left the machine: {url}"


def ask(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def last_answer(page: Any) -> Any:
    return page.locator("li[data-role=model]").last


def wait_answer(page: Any) -> Any:
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-status", "done", timeout=ANSWER_S)
    return answer


def set_settings(page: Any, values: dict[str, str]) -> None:
    page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog).to_be_visible()
    for label, value in values.items():
        dialog.get_by_label(label, exact=True).fill(value)
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()


def two_chats(page: Any, first: str, second: str, max_tokens: int) -> None:
    """Ask `first` in one chat, then `second` in a new one (its answer may still be coming)."""
    set_settings(page, {"Max tokens": str(max_tokens)})
    ask(page, first)
    wait_answer(page)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("li[data-role]")).to_have_count(0)
    ask(page, second)


def chat_rows(page: Any) -> Any:
    """The sidebar's chats, in the order listed (sections included)."""
    return page.locator("#chat-list li[data-id]")  # found in the closed drawer too


def chat_action(page: Any, title: str, item: str) -> None:
    """Pick `item` (Pin, Rename, Export as JSON (.json)...) from the "⋯" menu of the chat `title`."""
    page.get_by_role("button", name=f"Actions for {title}", exact=True).click()
    menu = page.get_by_role("menu", name=f"Actions for {title}", exact=True)
    menu.get_by_role("menuitem", name=item, exact=True).click()
    expect(menu).to_be_hidden()


def export_chat(page: Any, item: str) -> None:
    """Pick `item` from the header's Export menu (the open chat)."""
    page.get_by_role("button", name="Export", exact=True).click()
    page.get_by_role("menu", name="Export").get_by_role("menuitem", name=item, exact=True).click()


# -- answers that do not come from the model ------------------------------------------------------


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    """An /api/converse event stream of (event, data) pairs."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def done(**extra: Any) -> tuple[str, dict[str, Any]]:
    """A `done` event, with `extra` fields changed."""
    data = {"stop_reason": "stop", "prompt_tokens": 9, "completion_tokens": 5, "ttft_s": 0.12, "tokens_per_s": 42.0}
    return ("done", {**data, **extra})


# -- Pyodide held back ----------------------------------------------------------------------------


class HeldRuntime:
    """Holds every request for Pyodide's wasm until `release()`: Python cannot start before."""

    def __init__(self, page: Any) -> None:
        self.held: list[Any] = []
        self.released = False
        page.route(WASM, self._hold)

    def _hold(self, route: Any) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        self.released = True
        held, self.held = self.held, []
        for route in held:
            route.continue_()


def file(name: str, data: str | bytes, mime: str = "text/plain") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data.encode() if isinstance(data, str) else data}


def pending(page: Any) -> Any:
    """The chips of the files attached to the message being written."""
    return page.locator("#attached")
