"""4. Page: navigation to ready in headless Chromium, ours against a bare Pyodide boot, cold and warm.

Two pages from one server, the app's own (`python -m bench.page PORT` is our server with one extra
route, `/__bench/`, that serves `bench/bare/`; nothing in the app's routes changes):
- ours, `/`: ready when the page sets `document.body.dataset.ready = "true"` (Send enabled);
- bare, `/__bench/index.html`: a page that only imports our own `/static/pyodide/pyodide.mjs` and
  awaits `loadPyodide()`, then sets the same attribute. It is the floor: same origin, same static
  files, same cache headers and Content-Security-Policy.
An init script records `performance.now()` (milliseconds since navigation start) when the attribute
is set, so the figure is the browser's own, with no polling delay.

Cold: a fresh browser profile (empty HTTP cache and code cache, on disk as a real browser's). Warm:
the same profile navigating to the page again, in a new tab. (An incognito-style Playwright context
keeps its HTTP cache in memory and re-fetched about 9 MiB on every reload here, so it would not
show what a returning user gets.) Each rep opens one profile per page and alternates the two
loads by load (ours, bare, ours, bare, ...; who goes first swaps every rep), so both see the same
machine. Every tab stays open CACHE_PAUSE_S after ready: V8 writes its WebAssembly code cache only
once tier-up has settled, and a tab closed sooner leaves the next load nothing to reuse. Whether it
did is read from Chromium's own trace events (`v8.wasm.cachedModule` when the cache is written,
`v8.wasm.moduleCacheHit` when a load reuses it).

Phases of our boot, each in milliseconds since navigation start: resource timing of the runtime
(`pyodide.asm.wasm`, `python_stdlib.zip`) and the wheels; PyScript's `py:progress` events
("Loaded interpreter" is when loadPyodide resolved, the wheels in `packages` installed; "Loaded
files" when the client modules are in the virtual FS); and every `performance.mark` the page makes
(`snake:*` from the client when it has them).

Bytes are the encoded (on-the-wire) sizes Chromium reports through the DevTools protocol, headers
included. Any request to a host other than 127.0.0.1 is counted and reported.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Stacks, engine_settings, ratio, summary
from tests.harness import Popen, free_port, remove_log, spawn, stop_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
READY_TIMEOUT_MS = 120_000
CACHE_PAUSE_S = 5.0  # after ready, before the tab closes: V8 writes the wasm code cache in it
BARE_DIR = Path(__file__).resolve().parent / "bare"
BARE_PREFIX = "/__bench"
PAGES = {"ours": "/", "bare": f"{BARE_PREFIX}/index.html"}
TARGETS = {"cold": 1.1, "warm": 1.0, "aim": 0.8}  # ours ÷ bare, medians

INIT = """
(() => {
  const b = window.__bench = {progress: {}, events: {}, readyAt: undefined};
  addEventListener("py:progress", (e) => {
    const k = String(e.detail);
    if (!(k in b.progress)) b.progress[k] = performance.now();
  });
  for (const name of ["py:ready", "py:done"]) {
    document.addEventListener(name, () => { if (!(name in b.events)) b.events[name] = performance.now(); }, true);
  }
  const mark = () => {
    if (b.readyAt === undefined && document.body && document.body.dataset.ready === "true") {
      b.readyAt = performance.now();
      performance.mark("bench:ready");
    }
  };
  new MutationObserver(mark).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-ready"]});
})();
"""

COLLECT = """
() => {
  const res = performance.getEntriesByType("resource").map((r) => ({
    url: r.name, start: r.startTime, end: r.responseEnd, size: r.transferSize,
  }));
  const marks = {};
  for (const m of performance.getEntriesByType("mark")) if (!(m.name in marks)) marks[m.name] = m.startTime;
  return {ready: window.__bench.readyAt, progress: window.__bench.progress, events: window.__bench.events, res, marks};
}
"""

# (key, label) in boot order; what a page does not have is left out of its row.
PHASES = [
    ("wasm_fetched", "runtime fetched: pyodide.asm.wasm (responseEnd)"),
    ("stdlib_fetched", "runtime fetched: python_stdlib.zip (responseEnd)"),
    ("py:Loading interpreter", "loadPyodide called (py:progress Loading interpreter)"),
    ("mark:snake:interpreter-ready", "interpreter ready (snake:interpreter-ready)"),
    ("wheels_fetched", "wheels fetched (last responseEnd before ready)"),
    ("py:Loaded interpreter", "interpreter + packages installed (py:progress Loaded interpreter)"),
    ("mark:snake:packages-installed", "packages installed (snake:packages-installed)"),
    ("py:Loaded files", "client modules in the FS (py:progress Loaded files)"),
    ("py:Loaded Pyodide", "PyScript set up (py:progress Loaded Pyodide)"),
    ("main_fetched", "main.py fetched (responseEnd)"),
    ("mark:snake:modules-imported", "our modules imported (snake:modules-imported)"),
    ("mark:snake:first-render", "first render (snake:first-render)"),
    ("mark:snake:ready", "snake:ready"),
    ("ready", "ready (data-ready: Send enabled / loadPyodide resolved)"),
]

TRACE_CATEGORIES = ["disabled-by-default-devtools.timeline", "blink.user_timing"]


class Load:
    """One navigation in a new tab: when it was ready, its phases, bytes and requests, and what
    V8 did with its WebAssembly code cache."""

    def __init__(self, context: Any, url: str, pause_s: float) -> None:
        self.page = context.new_page()
        self.bytes = 0
        self.requests = 0
        self.from_cache = 0
        self.offsite: list[str] = []
        self.trace: list[dict[str, Any]] = []
        self._traced = False
        self.cdp = context.new_cdp_session(self.page)
        self.cdp.send("Network.enable")
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.on("Network.requestServedFromCache", lambda _: self._cached())
        self.cdp.on("Tracing.dataCollected", lambda e: self.trace.extend(e["value"]))
        self.cdp.on("Tracing.tracingComplete", lambda _: setattr(self, "_traced", True))
        self.cdp.send("Tracing.start", {"traceConfig": {"includedCategories": TRACE_CATEGORIES,
                                                        "excludedCategories": ["*"]},
                                        "transferMode": "ReportEvents"})
        self.page.on("request", self._request)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(url)
        try:
            self.page.wait_for_function("window.__bench && window.__bench.readyAt !== undefined",
                                        timeout=READY_TIMEOUT_MS, polling=50)
        except Exception as exc:
            said = "\n".join(self.console[-20:])
            raise RuntimeError(f"{url} was not ready in {READY_TIMEOUT_MS / 1000:.0f} s; console:\n{said}") from exc
        seen = self.page.evaluate(COLLECT)
        self.ready_s = seen["ready"] / 1000
        self.phases = phases(seen)
        self.marks = seen["marks"]
        self.progress = seen["progress"]
        self.page.wait_for_timeout(pause_s * 1000)  # the cache pause
        self.cdp.send("Tracing.end")
        while not self._traced:
            self.page.wait_for_timeout(50)
        self.wasm = wasm_cache(self.trace)
        self.trace = []
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


def phases(seen: dict[str, Any]) -> dict[str, float]:
    """Milliseconds since navigation start of each phase the page showed."""
    ready = seen["ready"]
    out: dict[str, float] = {}

    def last_end(pred: Any) -> float | None:
        ends = [r["end"] for r in seen["res"] if pred(urlsplit(r["url"]).path) and r["start"] < ready]
        return max(ends) if ends else None

    found = {
        "wasm_fetched": last_end(lambda p: p.endswith("/pyodide.asm.wasm")),
        "stdlib_fetched": last_end(lambda p: p.endswith("/python_stdlib.zip")),
        "wheels_fetched": last_end(lambda p: p.endswith(".whl")),
        "main_fetched": last_end(lambda p: p.endswith("/main.py")),
        "ready": ready,
    }
    found |= {f"py:{k}": v for k, v in seen["progress"].items()}
    found |= {f"mark:{k}": v for k, v in seen["marks"].items()}
    for key, value in found.items():
        if value is not None:
            out[key] = round(value, 1)
    return out


def wasm_cache(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the trace says V8 did with pyodide.asm.wasm: compiled it, reused a cached compile
    (`moduleCacheHit`), and when it wrote the code cache, in ms after the page was ready."""
    names = [e["name"] for e in events]
    ready_ts = next((e["ts"] for e in events if e["name"] == "bench:ready"), None)
    written = [e for e in events if e["name"] == "v8.wasm.cachedModule"]
    consumed = [e.get("args", {}).get("consumedCacheSize") for e in events if e["name"] == "v8.wasm.moduleCacheHit"]
    return {
        "hit": "v8.wasm.moduleCacheHit" in names,
        "consumed_bytes": consumed[0] if consumed else None,
        "invalid": "v8.wasm.moduleCacheInvalid" in names,
        "compiled": "v8.wasm.compiledModule" in names,
        "written": len(written),
        "written_bytes": written[-1].get("args", {}).get("producedCacheSize") if written else None,
        "written_after_ready_ms": (round((written[-1]["ts"] - ready_ts) / 1000) if written and ready_ts else None),
    }


def start_page_server(model: Path) -> tuple[Popen, str]:
    """Our server, as `bench.common.start_ours` configures it, plus the bench's `/__bench/`."""
    env = {k.upper(): str(v) for k, v in engine_settings(model).items()}
    env |= {"API_KEY": "", "QUEUE_SIZE": "64", "MAX_TOKENS": "512", "DEV": ""}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return spawn([sys.executable, "-m", "bench.page", str(port)], f"{url}/health", env, timeout=180), url


def serve(port: int) -> None:
    """`python -m bench.page PORT`: `python -m server`'s app with `/__bench/` in front."""
    import uvicorn
    from starlette.routing import Mount

    from server.__main__ import fail_loading
    from server.app import create_app
    from server.engines.loader import plan_engine
    from server.settings import Settings
    from server.static import CachedStatic

    settings = Settings.load(host="127.0.0.1", port=str(port))
    app = create_app(settings, plan_engine(settings), fail_loading)
    app.router.routes.insert(0, Mount(BARE_PREFIX, CachedStatic(directory=BARE_DIR, max_age=0)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def run(stacks: Stacks, reps: int = 3, warm_per_cold: int = 2, pause_s: float = CACHE_PAUSE_S) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return {"skipped": f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)"}
    from playwright.sync_api import sync_playwright

    proc, base = start_page_server(stacks.model)
    loads: dict[str, dict[str, list[Load]]] = {k: {"cold": [], "warm": []} for k in PAGES}
    try:
        with sync_playwright() as playwright:
            for rep in range(reps):
                order = list(PAGES) if rep % 2 == 0 else list(reversed(PAGES))
                with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
                    contexts = {}
                    try:
                        for kind in order:
                            contexts[kind] = playwright.chromium.launch_persistent_context(
                                Path(tmp) / kind, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                viewport={"width": 900, "height": 600},
                            )
                            contexts[kind].add_init_script(INIT)
                        for i in range(1 + warm_per_cold):
                            for kind in order:
                                which = "cold" if i == 0 else "warm"
                                loads[kind][which].append(Load(contexts[kind], base + PAGES[kind], pause_s))
                    finally:
                        for context in contexts.values():
                            context.close()
    finally:
        stop_server(proc)
        remove_log(proc)
    return results(loads, reps, warm_per_cold, pause_s)


def _median(xs: list[float | None]) -> float | None:
    ys = [x for x in xs if x is not None]
    return round(statistics.median(ys), 1) if ys else None


def results(loads: dict[str, dict[str, list[Load]]], reps: int, warm_per_cold: int, pause_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"reps": reps, "warm_per_cold": warm_per_cold, "cache_pause_s": pause_s}
    for kind, by in loads.items():
        sec: dict[str, Any] = {}
        for which, xs in by.items():
            sec[f"{which}_ready_s"] = summary([x.ready_s for x in xs], 3)
            sec[f"{which}_bytes"] = summary([x.bytes for x in xs], 0)
            sec[f"{which}_requests"] = summary([x.requests for x in xs], 0)
            sec[f"{which}_served_from_cache"] = summary([x.from_cache for x in xs], 0)
            keys = list(dict.fromkeys(k for x in xs for k in x.phases))
            sec[f"{which}_phases_ms"] = {k: _median([x.phases.get(k) for x in xs]) for k in keys}
            sec[f"{which}_wasm_cache"] = {
                "hits": sum(x.wasm["hit"] for x in xs),
                "loads": len(xs),
                "compiled": sum(x.wasm["compiled"] for x in xs),
                "invalid": sum(x.wasm["invalid"] for x in xs),
                "written": sum(x.wasm["written"] > 0 for x in xs),
                "written_after_ready_ms": _median([x.wasm["written_after_ready_ms"] for x in xs]),
                "written_bytes": _median([x.wasm["written_bytes"] for x in xs]),
            }
        sec["marks"] = sorted({m for xs in by.values() for x in xs for m in x.marks} - {"bench:ready"})
        sec["py_progress"] = sorted({p for xs in by.values() for x in xs for p in x.progress})
        sec["offsite_requests"] = sorted({u for xs in by.values() for x in xs for u in x.offsite})
        out[kind] = sec
    ours, bare = out["ours"], out["bare"]
    # the ours section's figures also sit at the top level, as before the bare floor was added
    out |= {k: v for k, v in ours.items() if k.endswith(("_ready_s", "_bytes", "_requests", "_served_from_cache"))}
    out["offsite_requests"] = sorted(set(ours["offsite_requests"]) | set(bare["offsite_requests"]))
    out["ratios"] = {}
    for which in ("cold", "warm"):
        medians = (ours[f"{which}_ready_s"]["median"], bare[f"{which}_ready_s"]["median"])
        out["ratios"][f"{which}_ours_over_bare"] = ratio(*medians)
        paired = [a.ready_s / b.ready_s for a, b in zip(loads["ours"][which], loads["bare"][which], strict=True)]
        out["ratios"][f"{which}_paired"] = summary(paired, 3)
    out["targets_ours_over_bare"] = TARGETS
    out["phase_labels"] = dict(PHASES)
    return out


if __name__ == "__main__":
    serve(int(sys.argv[1]))
