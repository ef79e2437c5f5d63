"""4. Page: navigation to Python-ready in headless Chromium, cold and warm, and bytes transferred.

"Python-ready" is the moment the page sets `document.body.dataset.ready = "true"`; an init
script records `performance.now()` (milliseconds since navigation start) when that happens, so
the figure is the browser's own, with no polling delay. Cold: a fresh browser profile (empty
HTTP cache and code cache, on disk as a real browser's). Warm: the same profile navigating to the
page again. (An incognito-style Playwright context keeps its HTTP cache in memory and re-fetched
about 9 MiB on every reload here, so it would not show what a returning user gets.) Bytes are the encoded
(on-the-wire) sizes Chromium reports through the DevTools protocol, headers included.
Any request to a host other than 127.0.0.1 is counted and reported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Stacks, summary

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
READY_TIMEOUT_MS = 120_000
MARK_READY = """
(() => {
  const mark = () => {
    if (window.__readyAt === undefined && document.body && document.body.dataset.ready === "true") {
      window.__readyAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-ready"]});
})();
"""


class Load:
    """One navigation, with the bytes and requests it caused."""

    def __init__(self, context: Any, url: str) -> None:
        self.page = context.new_page()
        self.bytes = 0
        self.requests = 0
        self.from_cache = 0
        self.offsite: list[str] = []
        self.cdp = context.new_cdp_session(self.page)
        self.cdp.send("Network.enable")
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.requestServedFromCache", lambda _: self._cached())
        self.page.on("request", self._request)
        self.page.goto(url)
        self.page.wait_for_function("window.__readyAt !== undefined", timeout=READY_TIMEOUT_MS, polling=50)
        self.ready_s = self.page.evaluate("window.__readyAt") / 1000
        self.page.close()

    def _finished(self, event: dict[str, Any]) -> None:
        self.bytes += int(event.get("encodedDataLength") or 0)

    def _cached(self) -> None:
        self.from_cache += 1

    def _request(self, request: Any) -> None:
        self.requests += 1
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob") and parts.hostname != "127.0.0.1":
            self.offsite.append(request.url)


def run(stacks: Stacks, reps: int = 3, warm_per_cold: int = 2) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return {"skipped": f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)"}
    from playwright.sync_api import sync_playwright

    url = stacks.ours()[1] + "/"
    cold: list[Load] = []
    warm: list[Load] = []
    with sync_playwright() as playwright:
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="bench-profile-") as profile:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport={"width": 900, "height": 600}
                )
                try:
                    context.add_init_script(MARK_READY)
                    cold.append(Load(context, url))
                    warm.extend(Load(context, url) for _ in range(warm_per_cold))
                finally:
                    context.close()
    return {
        "cold_ready_s": summary([x.ready_s for x in cold], 3),
        "warm_ready_s": summary([x.ready_s for x in warm], 3),
        "cold_bytes": summary([x.bytes for x in cold], 0),
        "warm_bytes": summary([x.bytes for x in warm], 0),
        "cold_requests": summary([x.requests for x in cold], 0),
        "warm_requests": summary([x.requests for x in warm], 0),
        "warm_served_from_cache": summary([x.from_cache for x in warm], 0),
        "offsite_requests": sorted({u for x in cold + warm for u in x.offsite}),
        "targets_s": {"cold": 2.5, "warm": 1.0},
    }
