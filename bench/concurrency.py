"""3. Concurrency: 1, 4, 8 and 16 simultaneous chats against ours and the peer.

Stacks: `ours` (our app, llama-cpp engine with PARALLEL slots over one KV pool) and `peer`
(llama.cpp's own server with the same threads, slots and pool, given the token ids our engine
renders), plus `lcp` (llama-cpp-python's server, one answer at a time) where it is installed.
Each chat is a distinct counting prompt (so no chat gets a free KV prefix beyond the shared
head) with a fixed `max_tokens`. While chats run, `/health` is polled on our app every 100 ms.
Reported per level: aggregate completion tokens/s over the wall time, p50/p95/max first-token
time, p95 total time, errors (HTTP errors, error events, or an answer that came back empty), and
"short answers": complete answers with fewer tokens than asked (a stop marker the model wrote
ended them; see `stop_reasons`).

Targets (ours): 8 chats at once give ≥ 1.6× the aggregate rate of one; the slowest first token
with 8 chats ≤ 3 s; `/health` answers within 100 ms under 16 chats.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench.common import DECODE_PARAMS, LCP_MODEL, PARALLEL, PEER_MODEL, Stacks, ours_body, percentile, ratio, summary
from tests.harness import aiter_sse, completion
from wire.types import Message

LEVELS = (1, 4, 8, 16)
TARGETS = {"ours_agg_8_over_1": 1.6, "ours_slowest_ttft_8_s": 3.0, "ours_health_max_16_s": 0.1}


def count_prompt(k: int) -> str:
    start = 1 + 7 * k
    return f"Count from {start} to 1000: " + ", ".join(str(start + i) for i in range(6)) + ","


async def one_chat(http: httpx.AsyncClient, target: str, body: dict[str, Any], ours: bool,
                   max_tokens: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    first: float | None = None
    tokens = 0
    reason: str | None = None
    error: str | None = None
    try:
        async with http.stream("POST", target, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                error = f"HTTP {response.status_code}"
            else:
                async for name, data in aiter_sse(response):
                    if ours:
                        if name == "token":
                            first = first or time.perf_counter() - t0
                        elif name == "done":
                            done = json.loads(data)
                            tokens, reason = done["completion_tokens"], done["stop_reason"]
                        elif name == "error":
                            error = json.loads(data).get("type", "error")
                        continue
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    for choice in chunk.get("choices") or ():
                        if choice.get("text"):
                            first = first or time.perf_counter() - t0
                            tokens += 1
                        reason = choice.get("finish_reason") or reason
                    if isinstance(chunk.get("usage"), dict):
                        tokens = int(chunk["usage"].get("completion_tokens", tokens))
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    if error is None and tokens == 0:
        error = "empty answer"
    return {"ttft_s": first, "total_s": time.perf_counter() - t0, "tokens": tokens, "error": error,
            "stop_reason": reason}


def requests(stacks: Stacks, name: str, n: int, max_tokens: int) -> tuple[str, list[dict[str, Any]]]:
    """The URL and the `n` bodies stack `name` gets (built before the clock starts)."""
    chats = [[Message(user=True, text=count_prompt(k))] for k in range(n)]
    if name == "ours":
        return f"{stacks.ours()[1]}/api/converse", [ours_body(c, {**DECODE_PARAMS, "max_tokens": max_tokens})
                                                    for c in chats]
    prompts = [stacks.prompt(c) for c in chats]
    if name == "peer":
        return f"{stacks.peer()[1]}/v1/completions", [
            completion(list(p.payload), model=PEER_MODEL, max_tokens=max_tokens, stop=list(p.stops),  # type: ignore[call-overload]
                       **DECODE_PARAMS) for p in prompts]
    return f"{stacks.lcp()[1]}/completions", [
        completion(stacks.prompt_text(p), model=LCP_MODEL, max_tokens=max_tokens, stop=list(p.stops),
                   **DECODE_PARAMS) for p in prompts]


async def _health_probe(http: httpx.AsyncClient, url: str, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            await http.get(f"{url}/health")
            out.append(time.perf_counter() - t0)
        except httpx.HTTPError:
            out.append(float("inf"))
        await asyncio.sleep(0.1)


async def level(target: str, bodies: list[dict[str, Any]], ours: bool, max_tokens: int,
                health_url: str | None) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits) as http:
        stop = asyncio.Event()
        health: list[float] = []
        probe = asyncio.create_task(_health_probe(http, health_url, stop, health)) if health_url else None
        t0 = time.perf_counter()
        chats = await asyncio.gather(*(one_chat(http, target, body, ours, max_tokens) for body in bodies))
        wall = time.perf_counter() - t0
        stop.set()
        if probe:
            await probe
    ok = [c for c in chats if not c["error"]]
    short = [c for c in ok if c["tokens"] < max_tokens]
    ttfts = [c["ttft_s"] for c in ok if c["ttft_s"] is not None]
    return {
        "agg_tps": sum(c["tokens"] for c in ok) / wall,
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, 95),
        "ttft_max_s": max(ttfts) if ttfts else None,
        "total_p95_s": percentile([c["total_s"] for c in ok], 95),
        "errors": len(chats) - len(ok),
        "error_kinds": sorted({str(c["error"]) for c in chats if c["error"]}),
        "tokens": [c["tokens"] for c in chats],
        "short_answers": len(short),
        "stop_reasons": [str(c["stop_reason"]) for c in ok],
        "health_max_s": max(health) if health else None,
        "health_p95_s": percentile(health, 95) if health else None,
    }


def run(stacks: Stacks, reps: int = 3, max_tokens: int = 24, levels: tuple[int, ...] = LEVELS) -> dict[str, Any]:
    names = ["ours", "peer", *(["lcp"] if stacks.with_lcp else [])]
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {s: {n: [] for n in levels} for s in names}
    ours_url = stacks.ours()[1]
    for name in names:  # first requests pay one-off costs; not measured
        target, bodies = requests(stacks, name, 1, 2)
        asyncio.run(level(target, bodies, name == "ours", 2, None))
    for rep in range(reps):
        for n in levels:
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                target, bodies = requests(stacks, name, n, max_tokens)
                health = ours_url if name == "ours" else None
                raw[name][n].append(asyncio.run(level(target, bodies, name == "ours", max_tokens, health)))
    out: dict[str, Any] = {"levels": list(levels), "reps": reps, "max_tokens": max_tokens, "stacks": {}}
    for name, by_level in raw.items():
        out["stacks"][name] = {}
        for n, runs in by_level.items():
            out["stacks"][name][str(n)] = {
                "agg_tps": summary([r["agg_tps"] for r in runs], 2),
                "ttft_p50_s": summary([r["ttft_p50_s"] for r in runs]),
                "ttft_p95_s": summary([r["ttft_p95_s"] for r in runs]),
                "ttft_max_s": summary([r["ttft_max_s"] for r in runs]),
                "total_p95_s": summary([r["total_p95_s"] for r in runs]),
                "errors": sum(r["errors"] for r in runs),
                "chats": n * len(runs),
                "short_answers": sum(r["short_answers"] for r in runs),
                "stop_reasons": {k: sum(r["stop_reasons"].count(k) for r in runs)
                                 for k in sorted({k for r in runs for k in r["stop_reasons"]})},
                "error_kinds": sorted({k for r in runs for k in r["error_kinds"]}),
                "health_max_s": max((r["health_max_s"] for r in runs if r["health_max_s"] is not None), default=None),
                "health_p95_s": summary([r["health_p95_s"] for r in runs]),
                "mean_tokens_per_chat": round(sum(sum(r["tokens"]) for r in runs) / (n * len(runs)), 1),
            }

    def med(name: str, n: int, key: str) -> float | None:
        x = out["stacks"].get(name, {}).get(str(n))
        return x[key]["median"] if x else None

    out["ratios"] = {
        f"{name}_agg_8_over_1": ratio(med(name, 8, "agg_tps"), med(name, 1, "agg_tps")) for name in names
    }
    out["ratios"]["ours_over_peer_agg_8"] = ratio(med("ours", 8, "agg_tps"), med("peer", 8, "agg_tps"))
    slowest = out["stacks"]["ours"].get("8", {}).get("ttft_max_s", {}).get("max")
    health = out["stacks"]["ours"].get("16", {}).get("health_max_s")
    out["ours_slowest_ttft_8_s"] = slowest
    out["ours_health_max_16_s"] = health
    out["targets"] = TARGETS
    out["note"] = (
        f"Ours and the peer both run {PARALLEL} llama.cpp slots over one KV pool; more chats than"
        " slots wait in a queue. llama-cpp-python's server, where raced, answers one request at a time."
    )
    return out
