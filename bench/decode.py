"""1. Decode overhead: tokens/s after the first token, raw vs ours vs the peer, on equal token counts.

The prompt asks the model to count; greedy with no repetition penalty, the Gemma 3 270M base model
then writes numbers for hundreds of tokens without starting a `### Human` turn, so our stop filter
never ends the answer early and every stack produces exactly `n_tokens` tokens (checked: the
result records each run's token count and whether the three texts are identical).
"""

from __future__ import annotations

from typing import Any

from bench.common import DECODE_PARAMS, Run, Stacks, ours_stream, peer_stream, prompt_of, ratio, raw_stream, summary
from client.protocol import Message

COUNT = "Count from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
STACKS = ("raw", "ours", "peer")


def one(stacks: Stacks, which: str, messages: list[Message], max_tokens: int) -> Run:
    params = {**DECODE_PARAMS, "max_tokens": max_tokens}
    prompt = prompt_of(messages)
    if which == "raw":
        return raw_stream(stacks.raw, prompt, DECODE_PARAMS, max_tokens)
    if which == "ours":
        return ours_stream(stacks.http, stacks.ours()[1], messages, params)
    return peer_stream(stacks.http, stacks.peer()[1], prompt, DECODE_PARAMS, max_tokens)


def run(stacks: Stacks, reps: int = 5, n_tokens: int = 128) -> dict[str, Any]:
    messages = [Message(user=True, text=COUNT)]
    for which in STACKS:  # load, warm the caches and the prompt's KV prefix everywhere alike
        one(stacks, which, messages, 4)
    runs: dict[str, list[Run]] = {s: [] for s in STACKS}
    for rep in range(reps):
        order = STACKS[rep % 3:] + STACKS[: rep % 3]  # rotate, so no stack always goes first
        for which in order:
            runs[which].append(one(stacks, which, messages, n_tokens))
    out: dict[str, Any] = {"n_tokens_requested": n_tokens, "reps": reps, "prompt_user_text": COUNT,
                           "params": DECODE_PARAMS, "stacks": {}}
    for which, rs in runs.items():
        out["stacks"][which] = {
            "decode_tps": summary([r.decode_tps for r in rs], 2),
            "ttft_s": summary([r.ttft_s for r in rs]),
            "tokens": [r.tokens for r in rs],
            "pieces": [len(r.token_times) for r in rs],
            "stop_reasons": sorted({str(r.stop_reason) for r in rs}),
            "errors": [r.error for r in rs if r.error],
        }
    texts = {w: rs[0].text.strip() for w, rs in runs.items() if rs}
    out["same_text"] = len(set(texts.values())) == 1
    out["equal_token_counts"] = all(r.tokens == n_tokens for rs in runs.values() for r in rs)
    med = {w: out["stacks"][w]["decode_tps"]["median"] for w in STACKS}
    out["ratios"] = {
        "ours_over_raw": ratio(med["ours"], med["raw"]),
        "peer_over_raw": ratio(med["peer"], med["raw"]),
        "ours_over_peer": ratio(med["ours"], med["peer"]),
    }
    # Paired ratios: each rep's three runs ran back to back, so their ratio cancels slow drifts.
    out["paired_ratios"] = {
        f"{a}_over_{b}": summary(
            [ratio(x.decode_tps, y.decode_tps, 4) for x, y in zip(runs[a], runs[b], strict=True)], 3
        )
        for a, b in (("ours", "raw"), ("peer", "raw"), ("ours", "peer"))
    }
    out["text_sample"] = texts.get("ours", "")[:120]
    return out


def raw_only(stacks: Stacks, reps: int = 5, n_tokens: int = 128) -> float | None:
    """Raw llama-cpp-python's median decode rate alone (for the bandwidth section run by itself)."""
    messages = [Message(user=True, text=COUNT)]
    one(stacks, "raw", messages, 4)
    return summary([one(stacks, "raw", messages, n_tokens).decode_tps for _ in range(reps)], 2)["median"]
