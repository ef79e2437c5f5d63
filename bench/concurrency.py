"""3. Concurrency: 1, 4 and 16 simultaneous chats against each server stack.

Stacks: `ours` (llama-cpp engine in process), `ours_remote` (our app with ENGINE=openai in front
of `python -m llama_cpp.server`) and `peer` (that llama.cpp Python server, called directly).
Each chat is a distinct counting prompt (so no chat gets a free KV prefix beyond the shared
head) with a fixed `max_tokens`. While chats run, `/health` is polled on our app (yardstick:
under 100 ms with 16 chats). Reported per level: aggregate completion tokens/s over the wall
time, p50/p95 first-token time, p95 total time, errors (HTTP errors, error events, or an
answer that came back empty), and "short answers": complete answers with fewer tokens than
asked (our stop filter ended them at a `### Human` the model wrote; see `stop_reasons`).

llama-cpp-python's server has no parallel decoding slots (one request at a time behind a lock),
so "scaling out" cannot be shown on this machine: that needs llama.cpp's own `llama-server
--parallel N` (or vLLM), which is not installed here.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench.common import DECODE_PARAMS, PEER_ALIAS, Stacks, percentile, prompt_of, summary
from client.protocol import Message

LEVELS = (1, 4, 16)


def count_prompt(k: int) -> str:
    start = 1 + 7 * k
    return f"Count from {start} to 1000: " + ", ".join(str(start + i) for i in range(6)) + ","


async def _sse(response: httpx.Response) -> Any:
    name, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


async def one_chat(http: httpx.AsyncClient, kind: str, url: str, k: int, max_tokens: int) -> dict[str, Any]:
    text = count_prompt(k)
    t0 = time.perf_counter()
    first: float | None = None
    tokens = 0
    reason: str | None = None
    error: str | None = None
    try:
        if kind == "peer":
            body = {"model": PEER_ALIAS, "prompt": prompt_of([Message(user=True, text=text)]),
                    "max_tokens": max_tokens, "stream": True, **DECODE_PARAMS}
            target = f"{url}/completions"
        else:
            body = {"conversation": {"messages": [{"user": True, "text": text}]},
                    "params": {**DECODE_PARAMS, "max_tokens": max_tokens}}
            target = f"{url}/api/converse"
        async with http.stream("POST", target, json=body) as response:
            if response.status_code != 200:
                await response.aread()
                error = f"HTTP {response.status_code}"
            else:
                async for name, data in _sse(response):
                    if kind == "peer":
                        if data == "[DONE]":
                            break
                        for choice in json.loads(data).get("choices") or ():
                            if choice.get("text"):
                                first = first or time.perf_counter() - t0
                                tokens += 1
                            reason = choice.get("finish_reason") or reason
                    elif name == "token":
                        first = first or time.perf_counter() - t0
                    elif name == "done":
                        done = json.loads(data)
                        tokens, reason = done["completion_tokens"], done["stop_reason"]
                    elif name == "error":
                        error = json.loads(data).get("type", "error")
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    if error is None and tokens == 0:
        error = "empty answer"
    return {"ttft_s": first, "total_s": time.perf_counter() - t0, "tokens": tokens, "error": error,
            "stop_reason": reason}


async def _health_probe(http: httpx.AsyncClient, url: str, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            await http.get(f"{url}/health")
            out.append(time.perf_counter() - t0)
        except httpx.HTTPError:
            out.append(float("inf"))
        await asyncio.sleep(0.1)


async def level(kind: str, url: str, n: int, max_tokens: int, health_url: str | None) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits) as http:
        stop = asyncio.Event()
        health: list[float] = []
        probe = asyncio.create_task(_health_probe(http, health_url, stop, health)) if health_url else None
        t0 = time.perf_counter()
        chats = await asyncio.gather(*(one_chat(http, kind, url, k, max_tokens) for k in range(n)))
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
    targets = {
        "ours": ("ours", stacks.ours()[1]),
        "ours_remote": ("ours", stacks.ours_remote()[1]),
        "peer": ("peer", stacks.peer()[1]),
    }
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {s: {n: [] for n in levels} for s in targets}
    for kind, url in targets.values():  # first requests pay one-off costs; not measured
        asyncio.run(level(kind, url, 1, 2, None))
    for rep in range(reps):
        for n in levels:
            names = list(targets)
            names = names[rep % len(names):] + names[: rep % len(names)]
            for name in names:
                kind, url = targets[name]
                health = url if kind == "ours" else None
                raw[name][n].append(asyncio.run(level(kind, url, n, max_tokens, health)))
    out: dict[str, Any] = {"levels": list(levels), "reps": reps, "max_tokens": max_tokens, "stacks": {}}
    for name, by_level in raw.items():
        out["stacks"][name] = {}
        for n, runs in by_level.items():
            out["stacks"][name][str(n)] = {
                "agg_tps": summary([r["agg_tps"] for r in runs], 2),
                "ttft_p50_s": summary([r["ttft_p50_s"] for r in runs]),
                "ttft_p95_s": summary([r["ttft_p95_s"] for r in runs]),
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
    out["note"] = (
        "llama-cpp-python's server decodes one request at a time (no parallel slots); true parallel "
        "slots need llama.cpp's `llama-server --parallel N`, which is not available on this machine. "
        "Our scheduler also runs one generation at a time for every engine, remote included."
    )
    return out
