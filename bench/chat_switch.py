"""12. Switching chats: from a click in the sidebar to a 120-message chat on screen, in headless Chromium.

The page is the app's own, on our server (`bench.page.start_page_server`), at 1280×800. Two chats
are imported (tests/browser/switching.py: a short one, and one of 120 messages whose answers have
Markdown, lists, tables and code blocks), with the Markdown renderer loaded. Each rep opens the
short chat, then the long one, and the page times it with its own clock: from the click's
timeStamp to the first animation frame with the long chat's last answer on screen as Markdown and
the view filled to its bottom (the frame is painted right after), and to the first frame with
all 120 messages rendered (the older ones come in short tasks after what is on screen).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import Stacks, summary
from bench.page import CHROMIUM, CHROMIUM_ARGS, READY_TIMEOUT_MS, start_page_server
from tests.browser import switching
from tests.harness import remove_log, stop_server

VIEWPORT = {"width": 1280, "height": 800}


def run(stacks: Stacks, reps: int = 10) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return {"skipped": f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)"}
    from playwright.sync_api import sync_playwright

    proc, base = start_page_server(stacks.model)
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="bench-switch-") as tmp:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.goto(base + "/")
                page.wait_for_selector("body[data-ready=true]", timeout=READY_TIMEOUT_MS)
                switching.import_chats(page, Path(tmp))
                measured = [switching.switch_ms(page) for _ in range(reps)]
            finally:
                browser.close()
    finally:
        stop_server(proc)
        remove_log(proc)
    on_screen = summary([m[0] for m in measured], 1)
    return {
        "reps": reps,
        "messages": switching.MESSAGES,
        "viewport": VIEWPORT,
        "on_screen_ms": on_screen,
        "all_rendered_ms": summary([m[1] for m in measured], 1),
        "target_on_screen_ms": switching.TARGET_MS,
    }


def section(r: dict[str, Any]) -> list[str]:
    from bench.report import _ran_alone, _s

    if "skipped" in r:
        return ["## 12. Switching to a long chat", "", f"Skipped: {r['skipped']}.", ""]
    target = r["target_on_screen_ms"]
    on_screen, everything = _s(r["on_screen_ms"], digits=0), _s(r["all_rendered_ms"], digits=0)
    return [
        "## 12. Switching to a long chat",
        "",
        " ".join("\n\n".join((__doc__ or "").split("\n\n")[1:]).split()) + _ran_alone(r),
        "",
        f"| {r['reps']} switches to a {r['messages']}-message chat | ms |",
        "|---|---|",
        f"| click → its end on screen (target ≤ {target:.0f} ms, median) | {on_screen} |",
        f"| click → all {r['messages']} messages rendered | {everything} |",
        "",
    ]


if __name__ == "__main__":
    import json

    from server.default_model import default_model_path

    print(json.dumps(run(Stacks(default_model_path())), indent=2))
