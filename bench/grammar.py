"""9. Grammar cost: does a chat bound by a heavy JSON schema slow the chat beside it?

llama.cpp checks every token of a constrained answer against the grammar compiled from its schema,
on the thread that runs every chat's batch. So one victim chat (an ordinary answer, on our API) is
timed alone, and then beside a neighbour on the OpenAI front door: one with no schema, and ones
with heavy schemas that our bounds (nesting ≤ 64, ≤ 32 KiB of schema) still take.

The victim's rate is its decode rate as the engine reports it (`done.tokens_per_s`). A neighbour is
streaming before the victim starts and is cut off when the victim is done. With two chats on the
model the victim's fair share is half its rate alone. Target: beside each neighbour, at least 0.8
of that share (paired per rep, median). Both run on our server as it ships and with
SPECULATIVE=off: the neighbours count on from their prompt, which n-gram drafting catches. What
slowed the victim was never the grammar but that drafting: a constrained neighbour's repetitive JSON
is drafted SPECULATIVE_DRAFT tokens at a time, and each draft is verified in the batch the victim
waits on.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from bench.common import DECODE_PARAMS, Stacks, ratio, start_ours, summary
from tests.harness import chat, iter_sse

COUNT = "Count from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"  # a long answer, with or without a schema
VICTIM = chat(COUNT, **DECODE_PARAMS, max_tokens=96)
# long enough to outlast the victim: a neighbour that drafts well ended a 512-token answer before
# the victim did, and the victim then ran alone, which hid what the neighbour cost it
NEIGHBOUR_TOKENS = 2048
SCHEMAS: dict[str, dict[str, Any] | None] = {
    "no schema": None,
    "array of minItems 20,000": {"type": "array", "minItems": 20_000, "items": {"type": "integer"}},
    "string of minLength 1,000,000": {"type": "string", "minLength": 1_000_000},
    "2 nested arrays of minItems 50": {"type": "array", "minItems": 50, "items": {
        "type": "array", "minItems": 50, "items": {"type": "integer"}}},
    "4 nested arrays of minItems 50": {"type": "array", "minItems": 50, "items": {"type": "array", "minItems": 50,
                                       "items": {"type": "array", "minItems": 50, "items": {
                                           "type": "array", "minItems": 50, "items": {"type": "integer"}}}}},
}
TARGET = 0.8


class Neighbour(threading.Thread):
    """A constrained answer streamed from the OpenAI front door until `stop` is set."""

    def __init__(self, url: str, schema: dict[str, Any] | None) -> None:
        super().__init__(daemon=True)
        self.body: dict[str, Any] = {"messages": [{"role": "user", "content": COUNT}], "stream": True,
                                     "max_tokens": NEIGHBOUR_TOKENS, "temperature": 0.0}
        if schema is not None:
            self.body["response_format"] = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
        self.url, self.streaming, self.stop, self.ended_early = url, threading.Event(), threading.Event(), False
        self.error: str | None = None

    def run(self) -> None:
        try:
            with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=self.body, timeout=300) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        self.streaming.set()
                    if self.stop.is_set():
                        return
            self.ended_early = True
        except httpx.HTTPError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.streaming.set()


def victim_rate(url: str) -> float | None:
    with httpx.stream("POST", f"{url}/api/converse", json=VICTIM, timeout=300) as response:
        events = list(iter_sse(response))
    done = next((data for name, data in events if name == "done"), None)
    return None if done is None else float(json.loads(done)["tokens_per_s"])


def beside(url: str, schema: dict[str, Any] | None) -> tuple[float | None, bool]:
    """The victim's rate beside a neighbour with `schema`, and whether the neighbour ran throughout."""
    neighbour = Neighbour(url, schema)
    neighbour.start()
    neighbour.streaming.wait(120)
    rate = victim_rate(url)
    throughout = neighbour.is_alive() and not neighbour.ended_early and neighbour.error is None
    neighbour.stop.set()
    neighbour.join(60)
    return rate, throughout


def side_by_side(url: str, reps: int) -> dict[str, Any]:
    victim_rate(url)  # warm
    rates: dict[str, list[float | None]] = {name: [] for name in ("alone", *SCHEMAS)}
    throughout: dict[str, list[bool]] = {name: [] for name in SCHEMAS}
    for _ in range(reps):
        rates["alone"].append(victim_rate(url))
        for name, schema in SCHEMAS.items():
            rate, ran = beside(url, schema)
            rates[name].append(rate)
            throughout[name].append(ran)
    shares = [None if alone is None else alone / 2 for alone in rates["alone"]]
    of_share = {name: summary([ratio(r, share, 4) for r, share in zip(rates[name], shares, strict=True)], 3)
                for name in SCHEMAS}
    return {
        "victim_tps": {name: summary(values, 1) for name, values in rates.items()},
        "neighbour_ran_throughout": {name: sum(flags) for name, flags in throughout.items()},
        "of_fair_share": of_share,
        "worst_of_fair_share": min(x["median"] for x in of_share.values() if x.get("median") is not None),
    }


def run(stacks: Stacks, reps: int = 3) -> dict[str, Any]:
    """Side by side on our server as it ships (SPECULATIVE=auto) and with SPECULATIVE=off."""
    off = stacks.extra("ours_off", lambda model: start_ours(model, {"SPECULATIVE": "off"}))
    return {"reps": reps, "target": TARGET, "neighbour_tokens": NEIGHBOUR_TOKENS,
            "servers": {"auto": side_by_side(stacks.ours()[1], reps), "off": side_by_side(off[1], reps)}}
