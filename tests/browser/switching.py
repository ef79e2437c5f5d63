"""Opening a long chat from the sidebar, timed in the page: what the browser tests and `make bench`
share (tests/browser/test_chat_switch.py, bench/chat_switch.py).

The chats come in as an all-chats export (client.library's format), so no answer of the model is
needed: a short chat, and one of 120 messages whose answers have Markdown, lists, tables and code
blocks. The time is the browser's own: from the click's timeStamp (when the browser got it) to the
first animation frame in which the long chat's last answer is on screen, rendered as Markdown,
and the messages fill the view down to its bottom. That frame is painted right after.
"""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import expect

from client.library import EXPORT_ALL_FORMAT, EXPORT_FORMAT

MESSAGES = 120
SHORT = "A short chat"
LONG = "A long chat with code"
LAST_WORDS = "the end of the long chat"
TARGET_MS = 300.0


def answer(n: int) -> str:
    """An answer as a model writes one: about 250 words, with a list, two code blocks and a table."""
    code = "".join(f"    total += step({i}, x)  # step {i} of part {n}\n" for i in range(8))
    return (
        f"## Part {n}\n\nSome *text* with `code`, **bold** and a [link](https://example.org/{n}). "
        + "A sentence that explains the point at some length, as answers do. " * 6
        + f"\n\n- a point\n- another point, number {n}\n- a third, with `inline code`\n\n"
        f"```python\ndef f{n}(x):\n    total = 0\n{code}    return total\n```\n\n"
        + "Then a paragraph on what the code does, and why, in plain words. " * 5
        + f"\n\n```python\nprint(f{n}(2))\n```\n\n"
        f"| a | b | c |\n|---|---|---|\n| {n} | {n + 1} | {n + 2} |\n| x | y | z |\n"
    )


def turns(first: int = 0, version: str = "") -> list[dict[str, Any]]:
    """The long chat's turns from turn `first` (a model's answer: odd) on, each answer led by `version`."""
    out: list[dict[str, Any]] = []
    for n in range(MESSAGES // 2):
        question = LONG if n == 0 else f"Question {n}: and what about part {n}?"
        text = version + answer(n) + (f"\n\nThat is {LAST_WORDS}.\n" if n == MESSAGES // 2 - 1 else "")
        out += [{"user": True, "text": question}, {"user": False, "text": text}]
    return out[first:]


def export() -> str:
    """The two chats, the long one newest (so it is listed first and the short one opens on a click)."""
    long_turns = turns()
    short_turns = [{"user": True, "text": SHORT}, {"user": False, "text": "Sure."}]
    now = time.time()
    chats = [
        {"format": EXPORT_FORMAT, "title": "", "turns": long_turns, "updated": now},
        {"format": EXPORT_FORMAT, "title": "", "turns": short_turns, "updated": now - 60},
    ]
    return json.dumps({"format": EXPORT_ALL_FORMAT, "chats": chats})


# Test code, not the page's: arms a one-off timer on the next click. `__switch`: the first frame
# with the end on screen; `__all`: the first frame with every message rendered.
ARM = """
([lastWords, count]) => {
  window.__switch = null;
  window.__all = null;
  document.addEventListener("click", (event) => {
    const pressed = event.timeStamp;
    const scroller = document.querySelector("#chat");
    const look = () => {
      const rows = document.querySelectorAll("#messages > li[data-role]:not([hidden])");
      if (window.__switch === null) {
        const last = rows[rows.length - 1];
        const bubble = last && last.querySelector("[data-part=bubble]");
        const shown = bubble && bubble.dataset.markdown === "true" && bubble.textContent.includes(lastWords);
        const full = scroller.scrollHeight > scroller.clientHeight;
        const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 2;
        if (shown && full && atBottom) window.__switch = performance.now() - pressed;
      }
      if (window.__switch !== null && rows.length === count) window.__all = performance.now() - pressed;
      else requestAnimationFrame(look);
    };
    requestAnimationFrame(look);
  }, {capture: true, once: true});
}
"""


def row(page: Any, title: str) -> Any:
    return page.locator("#chat-list button[data-action=open]").filter(has_text=title)


def open_short(page: Any) -> None:
    row(page, SHORT).click()
    expect(page.locator("#messages > li[data-role]:not([hidden])")).to_have_count(2)


def switch_ms(page: Any) -> tuple[float, float]:
    """Open the short chat, then time opening the long one: (its end on screen, all of it rendered), ms."""
    open_short(page)
    page.evaluate(ARM, [LAST_WORDS, MESSAGES])
    row(page, LONG).click()
    page.wait_for_function("window.__all !== null", polling="raf", timeout=60_000)
    return float(page.evaluate("window.__switch")), float(page.evaluate("window.__all"))


def import_chats(page: Any, folder: Any) -> None:
    """Import the two chats into a page that is ready, with its Markdown renderer loaded."""
    page.wait_for_selector("body[data-markdown=ready]", timeout=60_000)
    seed = folder / "chats.json"
    seed.write_text(export())
    page.get_by_label("Import chat (JSON or Markdown)").set_input_files(str(seed))
    expect(page.locator("#chat-list button[data-action=open]")).to_have_count(2)
