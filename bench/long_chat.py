"""11. A long chat past the context: first-token time of the turns past the window, against the
turns before it.

One chat on our server (greedy, short answers), each turn a paragraph. It opens with a history
that fills about 5/6 of the window (read once, cold: not measured), goes on until the
window is full, then 20 turns past it. Past the window the server drops the oldest turns in steps
(server.context), so most turns keep the prompt's start and read only their own new text from
the prompt cache; a turn that drops reads the kept history again. Target: the median first token
of the turns past the window ≤ 2× that of the turns before it (every turn past it used to read
the whole window again).
"""

from __future__ import annotations

from typing import Any

from bench.common import CHAT_PARAMS, N_CTX, Run, Stacks, ratio, summary
from bench.first_token import CHAT_TURNS
from wire.types import Message

ANSWER_TOKENS = 32
TARGET = 2.0


def question(chat: int, i: int) -> str:
    """A paragraph of about a hundred tokens, different every turn of every chat."""
    parts = [CHAT_TURNS[(i + k) % len(CHAT_TURNS)] for k in range(3)]
    return f"Chat {chat + 1}, turn {i + 1}. " + " ".join(parts)


def opening(chat: int, tokens: int) -> list[Message]:
    """A history of questions and short answers of about `tokens` tokens, ending with an answer."""
    history: list[Message] = []
    for i in range(tokens // 100):  # ~100 tokens a turn with the template's
        history += [Message(user=True, text=question(chat, 1000 + i)),
                    Message(user=False, text=f"Noted: that is point {i + 1} of the plan. Anything else?")]
    return history


def one_chat(stacks: Stacks, chat: int, past: int) -> list[Run]:
    """The chat's turns, from the first after the opening to the `past`-th past the window; each
    chat its own text, so that none finds another's prompts in the cache."""
    history = opening(chat, N_CTX * 5 // 6)
    runs: list[Run] = []
    dropped = 0
    i = 0
    while dropped < past:
        history.append(Message(user=True, text=question(chat, i)))
        run = stacks.ask("ours", history, CHAT_PARAMS, ANSWER_TOKENS)
        run.text = run.text.strip()
        runs.append(run)
        if run.error:
            break
        dropped += bool(run.truncated_turns)
        history.append(Message(user=False, text=run.text or "OK."))
        i += 1
    return runs


def run(stacks: Stacks, reps: int = 2, past: int = 20) -> dict[str, Any]:
    turns = []
    for rep in range(reps):
        turns.append([{"ttft_s": r.ttft_s and round(r.ttft_s, 4), "prompt_tokens": r.prompt_tokens,
                       "evaluated": r.prompt_tokens_evaluated, "dropped_messages": r.truncated_turns or 0,
                       "error": r.error} for r in one_chat(stacks, rep, past)])
    return {"reps": reps, "turns_past": past, "n_ctx": N_CTX, "answer_tokens": ANSWER_TOKENS,
            "target_past_over_before": TARGET, **summarise(turns)}


def summarise(chats: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """First-token times and tokens read of the turns before the window is full, past it, and of
    those the turns that dropped, from each chat's turns; the first turn reads the opening cold,
    neither before nor past the window. Tokens read do not depend on how busy the machine was."""
    groups: dict[str, list[dict[str, Any]]] = {"before": [], "past": [], "drop_turns": []}
    for turns in chats:
        for t in range(1, len(turns)):
            cut, previous = turns[t]["dropped_messages"], turns[t - 1]["dropped_messages"]
            groups["past" if cut else "before"].append(turns[t])
            if cut != previous:
                groups["drop_turns"].append(turns[t])
    out: dict[str, Any] = {"turns": chats, "errors": [t["error"] for ts in chats for t in ts if t.get("error")]}
    for name, group in groups.items():
        out[f"ttft_{name}_s"] = summary([t["ttft_s"] for t in group])
        out[f"evaluated_{name}"] = summary([t["evaluated"] for t in group], 0)
    out["drop_turns"] = len(groups["drop_turns"])
    out["past_over_before"] = ratio(out["ttft_past_s"]["median"], out["ttft_before_s"]["median"])
    return out
