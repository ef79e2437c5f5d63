"""8. Speculative decoding: ours (SPECULATIVE=auto) against llama.cpp's own server with its defaults
(plain decoding), and against ours with SPECULATIVE=off under 8 chats at once.

- A rewrite: the chat holds a long answer (1 to 100) and asks for it again, so the answer repeats
  its input, as code edits and quotes of an attached file do. Greedy, both stacks write the same
  text; n-gram drafting proposes it from the chat. Target: ours ≥ 1.5× the peer's rate.
- An ordinary chat that repeats nothing: ours ≥ 0.97× the peer's rate.
- 8 ordinary chats at once: ours' aggregate ≥ 0.95× the same server with SPECULATIVE=off.

A rate is completion tokens over the whole request (first token included), each rep's stacks run
back to back in turn, and the ratios are medians of those paired ratios, so slow drifts of a
shared machine cancel. On 2 shared cores one ratio still moves by ±5% from run to run, hence 12 reps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench.common import DECODE_PARAMS, Run, Stacks, ours_body, ratio, start_ours, summary
from bench.concurrency import level
from server.settings import Settings
from wire.types import Message

COUNTED = ", ".join(str(i) for i in range(1, 101))
REWRITE = [Message(True, "Count from 1 to 100."), Message(False, COUNTED), Message(True, "Count from 1 to 100 again.")]
# a long answer (96 tokens, the same text from both stacks) in which llama.cpp finds nothing to draft
ORDINARY = [Message(True, "What are the fifty states of the USA?")]
QUESTIONS = (
    "What is the capital of Italy?", "Tell me a joke.", "Why is the sky blue?", "Name three rivers in Africa.",
    "How do bees make honey?", "What should I cook tonight?", "Who wrote Hamlet?", "Describe a sunset at sea.",
)
TARGETS = {"rewrite_over_peer": 1.5, "ordinary_over_peer": 0.97, "agg_8_over_off": 0.95}


def rate(run: Run) -> float | None:
    """Completion tokens per second of the whole request."""
    return run.tokens / run.total_s if run.tokens and run.total_s and not run.error else None


def paired(stacks: Stacks, chat: list[Message], reps: int, max_tokens: int) -> dict[str, Any]:
    """Ours against the peer on one chat, each rep back to back (order alternating)."""
    names = ("ours", "peer")
    for which in names:  # warm: the chat's prefix in both stacks' caches
        stacks.ask(which, chat, DECODE_PARAMS, 2)
    runs: dict[str, list[Run]] = {n: [] for n in names}
    for rep in range(reps):
        for which in names[rep % 2:] + names[: rep % 2]:
            runs[which].append(stacks.ask(which, chat, DECODE_PARAMS, max_tokens))
    pairs = [ratio(rate(o), rate(p), 4) for o, p in zip(runs["ours"], runs["peer"], strict=True)]
    return {
        "asked": chat[-1].text,
        "rate_tps": {n: summary([rate(r) for r in rs], 2) for n, rs in runs.items()},
        "tokens": {n: [r.tokens for r in rs] for n, rs in runs.items()},
        "same_text": len({rs[0].text.strip() for rs in runs.values()}) == 1,
        "errors": [r.error for rs in runs.values() for r in rs if r.error],
        "ours_over_peer": summary(pairs, 3),
        "text_sample": runs["ours"][0].text[:80],
    }


def drafted(url: str) -> int:
    """How many answers this server has drafted any token for (its draft-acceptance histogram's count)."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
               if line.startswith("snake_llama_draft_acceptance_count"))


def eight_at_once(stacks: Stacks, reps: int, max_tokens: int) -> dict[str, Any]:
    """8 ordinary chats at once: ours (auto) against ours with SPECULATIVE=off, aggregate tokens/s."""
    off = stacks.extra("ours_off", lambda model: start_ours(model, {"SPECULATIVE": "off"}))
    urls = {"auto": stacks.ours()[1], "off": off[1]}
    drafted_before = drafted(urls["auto"])  # the rewrites above drafted on the same server
    bodies = [ours_body([Message(True, q)], {**DECODE_PARAMS, "max_tokens": max_tokens}) for q in QUESTIONS]
    for url in urls.values():  # warm
        asyncio.run(level(f"{url}/api/converse", bodies, True, max_tokens, None))
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in urls}
    order = list(urls)
    for rep in range(reps):
        for k in order[rep % 2:] + order[: rep % 2]:
            runs[k].append(asyncio.run(level(f"{urls[k]}/api/converse", bodies, True, max_tokens, None)))
    pairs = [ratio(a["agg_tps"], o["agg_tps"], 4) for a, o in zip(runs["auto"], runs["off"], strict=True)]
    return {
        "answers": len(bodies) * (reps + 1),
        "answers_drafted": drafted(urls["auto"]) - drafted_before,
        "agg_tps": {k: summary([r["agg_tps"] for r in rs], 2) for k, rs in runs.items()},
        "tokens": {k: [sum(r["tokens"]) for r in rs] for k, rs in runs.items()},
        "errors": sum(r["errors"] for rs in runs.values() for r in rs),
        "auto_over_off": summary(pairs, 3),
    }


def run(stacks: Stacks, reps: int = 12, rewrite_tokens: int = 160, chat_tokens: int = 96,
        agg_tokens: int = 48, agg_reps: int = 12) -> dict[str, Any]:
    out: dict[str, Any] = {"reps": reps, "agg_reps": agg_reps, "params": DECODE_PARAMS, "targets": TARGETS,
                           "draft": Settings.speculative_draft}
    out["rewrite"] = paired(stacks, REWRITE, reps, rewrite_tokens)
    out["ordinary"] = paired(stacks, ORDINARY, reps, chat_tokens)
    out["eight"] = eight_at_once(stacks, agg_reps, agg_tokens)
    out["ratios"] = {
        "rewrite_over_peer": out["rewrite"]["ours_over_peer"]["median"],
        "ordinary_over_peer": out["ordinary"]["ours_over_peer"]["median"],
        "agg_8_over_off": out["eight"]["auto_over_off"]["median"],
    }
    return out
