"""2. First-token time: a short prompt on each stack, then a 12-turn chat, ours vs the peer.

Times are from sending the request to the first piece of answer text arriving (for ours: the
first `token` event, i.e. what a user sees). Every stack gets the same sequence of prompts, so
whatever KV prefix one of them can reuse, the others can too:
- `short_cold`: a one-line question behind a system line no earlier request had, so the whole
  prompt (about 50 tokens) is evaluated;
- `short_head_cached`: a fresh one-line question behind the usual preamble and few-shot
  example, which the previous request left in the KV cache (the common case in a new chat);
- `chat`: 12 turns, each stack seeing its own earlier answers (greedy, so they agree), and at the
  end a cold read of the turn-12 history (behind a different first line, so no cache shares it).
  Our engine pins a chat to the slot that holds its cache, so turn 12 reads only the new turn;
  target: ours at turn 12 ≤ 0.3 of the cold read.
"""

from __future__ import annotations

from typing import Any

from bench.common import CHAT_PARAMS, Run, Stacks, ratio, summary
from wire.types import Message

QUESTIONS = [
    "What is the capital of Spain?", "What colour is the sky?", "Name a large animal.",
    "What is two plus two?", "Where is Mount Fuji?", "Who wrote Hamlet?", "What is water made of?",
    "How many legs has a spider?", "What is the largest ocean?", "Which planet is red?",
]
CHAT_TURNS = [
    "Hello! I am planning a week-long trip to Italy next spring and would like some help with it.",
    "I will arrive in Rome on a Monday morning. Which sights should I see on the first day there?",
    "That sounds good. How long does it take to walk from the Colosseum to the Trevi Fountain?",
    "On Tuesday I would like to visit the Vatican museums. Do I need to book the tickets in advance?",
    "After Rome I want to take the train to Florence. How long is the journey, roughly, by fast train?",
    "In Florence I love art and old buildings. What are the two most famous museums in the city?",
    "Is it worth climbing to the top of the cathedral dome, or is the view from elsewhere better?",
    "I also want to eat well. Which dishes is Tuscany known for, and what should I try first there?",
    "From Florence I could go to Venice or to the coast near Pisa. Which would you choose and why?",
    "If I go to Venice, how do people get around the city, given that there are no cars at all there?",
    "What is the best way to get from Venice back to Rome for my flight home on the Sunday evening?",
    "Thank you. Can you give me a short summary of the whole plan, day by day, in a few lines please?",
]
SHORT_TOKENS = 8
CHAT_TOKENS = 32
STACKS = ("engine", "ours", "peer")
TARGET = 0.3


def ask(stacks: Stacks, which: str, messages: list[Message], max_tokens: int, system: str | None = None) -> Run:
    run = stacks.ask(which, messages, CHAT_PARAMS, max_tokens, system)
    run.text = run.text.strip()
    return run


def short(stacks: Stacks, reps: int) -> dict[str, Any]:
    cold: dict[str, list[Run]] = {s: [] for s in STACKS}
    warm: dict[str, list[Run]] = {s: [] for s in STACKS}
    for which in STACKS:  # the first request of a process pays one-off costs; not measured
        ask(stacks, which, [Message(user=True, text="Hello")], 2)
    for rep in range(reps):
        order = STACKS[rep % 3:] + STACKS[: rep % 3]
        question = [Message(user=True, text=QUESTIONS[rep % len(QUESTIONS)])]
        for which in order:
            cold[which].append(ask(stacks, which, question, SHORT_TOKENS, f"Session {rep + 101}: be brief."))
            ask(stacks, which, [Message(user=True, text="Hi")], 1)  # puts the usual head in the cache
            other = [Message(user=True, text=QUESTIONS[(rep + 5) % len(QUESTIONS)])]
            warm[which].append(ask(stacks, which, other, SHORT_TOKENS))
    out: dict[str, Any] = {}
    for name, runs in (("short_cold", cold), ("short_head_cached", warm)):
        section: dict[str, Any] = {
            w: {"ttft_s": summary([r.ttft_s for r in rs]), "errors": [r.error for r in rs if r.error]}
            for w, rs in runs.items()
        }
        section["prompt_tokens"] = [r.prompt_tokens for r in runs["ours"]][:1]
        med = {w: section[w]["ttft_s"]["median"] for w in STACKS}
        section["ratios"] = {"ours_over_engine": ratio(med["ours"], med["engine"]),
                             "peer_over_engine": ratio(med["peer"], med["engine"]),
                             "ours_over_peer": ratio(med["ours"], med["peer"])}
        out[name] = section
    return out


def chat(stacks: Stacks, reps: int, turns: int = 12) -> dict[str, Any]:
    per_turn: dict[str, list[list[float | None]]] = {w: [[] for _ in range(turns)] for w in ("ours", "peer")}
    evaluated: list[list[int | None]] = [[] for _ in range(turns)]
    prompt_tokens: list[int | None] = [None] * turns
    cold: dict[str, list[float | None]] = {"ours": [], "peer": []}
    errors: list[str] = []
    for rep in range(reps):
        history: dict[str, list[Message]] = {"ours": [], "peer": []}
        for t in range(turns):
            order = ("ours", "peer") if (rep + t) % 2 == 0 else ("peer", "ours")
            for which in order:
                history[which].append(Message(user=True, text=CHAT_TURNS[t % len(CHAT_TURNS)]))
                run = ask(stacks, which, history[which], CHAT_TOKENS)
                if run.error:
                    errors.append(f"{which} turn {t + 1}: {run.error}")
                per_turn[which][t].append(run.ttft_s)
                if which == "ours":
                    evaluated[t].append(run.prompt_tokens_evaluated)
                    prompt_tokens[t] = run.prompt_tokens
                if t < turns - 1:
                    history[which].append(Message(user=False, text=run.text or "OK."))
        # The same history read cold: our engine keeps each chat's cache (in its slot, or in the
        # host-RAM prompt cache) and would restore it, so the cold read changes the first line,
        # which no cache shares.
        system = f"A chat between a human and an assistant, read cold ({rep})."
        for which in ("ours", "peer"):
            cold[which].append(ask(stacks, which, history[which], CHAT_TOKENS, system).ttft_s)
    out: dict[str, Any] = {
        "turns": turns,
        "reps": reps,
        "prompt_tokens_per_turn": prompt_tokens,
        "ours_prompt_tokens_evaluated_per_turn": [summary(e, 0)["median"] for e in evaluated],
        "ttft_per_turn_s": {w: [summary(x)["median"] for x in per_turn[w]] for w in per_turn},
        "ttft_per_turn_spread_s": {w: [[summary(x)["min"], summary(x)["max"]] for x in per_turn[w]] for w in per_turn},
        "last_turn_ttft_s": {w: summary(per_turn[w][-1]) for w in per_turn},
        "cold_read_ttft_s": {w: summary(cold[w]) for w in cold},
        "errors": errors,
        "target_last_turn_over_cold_read": TARGET,
    }
    out["ratios"] = {
        f"{w}_last_turn_over_cold_read": ratio(
            out["last_turn_ttft_s"][w]["median"], out["cold_read_ttft_s"][w]["median"]
        )
        for w in per_turn
    }
    out["ratios"]["ours_over_peer_last_turn"] = ratio(
        out["last_turn_ttft_s"]["ours"]["median"], out["last_turn_ttft_s"]["peer"]["median"]
    )
    return out


def run(stacks: Stacks, reps: int = 5, chat_reps: int = 3) -> dict[str, Any]:
    return {**short(stacks, reps), "chat": chat(stacks, chat_reps)}
