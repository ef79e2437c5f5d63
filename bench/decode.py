"""1. Decode rate: tokens/s after the first token, our engine alone vs ours vs the peer(s).

The prompt asks the model to count; greedy with no repetition penalty, the Gemma 3 270M base model
then writes numbers for hundreds of tokens without starting a `### Human` turn, so no stop marker
ends the answer early and every stack produces exactly `n_tokens` tokens (checked: the result
records each run's token count and whether the texts are identical). The engine alone is our
`LlamaCppEngine` driven from this process through `render` + `stream`: what our server adds on top
of it (scheduler, stop filter, HTTP, SSE) is the difference. Target: ours ≥ 0.98 of it.
"""

from __future__ import annotations

from typing import Any

from bench.common import DECODE_PARAMS, Run, Stacks, ratio, summary
from wire.types import Message

COUNT = "Count from 1 to 1000: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
TARGET = 0.98


def stacks_of(stacks: Stacks) -> tuple[str, ...]:
    return ("engine", "ours", "peer", "lcp") if stacks.with_lcp else ("engine", "ours", "peer")


def run(stacks: Stacks, reps: int = 5, n_tokens: int = 128) -> dict[str, Any]:
    names = stacks_of(stacks)
    messages = [Message(user=True, text=COUNT)]
    for which in names:  # load, warm the caches and the prompt's KV prefix everywhere alike
        stacks.ask(which, messages, DECODE_PARAMS, 4)
    runs: dict[str, list[Run]] = {s: [] for s in names}
    for rep in range(reps):
        k = rep % len(names)
        for which in names[k:] + names[:k]:  # rotate, so no stack always goes first
            runs[which].append(stacks.ask(which, messages, DECODE_PARAMS, n_tokens))
    out: dict[str, Any] = {"n_tokens_requested": n_tokens, "reps": reps, "prompt_user_text": COUNT,
                           "params": DECODE_PARAMS, "stacks": {}, "target_ours_over_engine": TARGET}
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
    med = {w: out["stacks"][w]["decode_tps"]["median"] for w in names}
    pairs = [("ours", "engine"), ("peer", "engine"), ("ours", "peer")]
    if "lcp" in names:
        pairs += [("lcp", "engine"), ("ours", "lcp")]
    out["ratios"] = {f"{a}_over_{b}": ratio(med[a], med[b]) for a, b in pairs}
    # Paired ratios: each rep's runs ran back to back, so their ratio cancels slow drifts.
    out["paired_ratios"] = {
        f"{a}_over_{b}": summary(
            [ratio(x.decode_tps, y.decode_tps, 4) for x, y in zip(runs[a], runs[b], strict=True)], 3
        )
        for a, b in pairs
    }
    out["text_sample"] = texts.get("ours", "")[:120]
    return out


def engine_only(stacks: Stacks, reps: int = 5, n_tokens: int = 128) -> float | None:
    """The engine alone's median decode rate (for the bandwidth section run by itself)."""
    messages = [Message(user=True, text=COUNT)]
    stacks.ask("engine", messages, DECODE_PARAMS, 4)
    runs = [stacks.ask("engine", messages, DECODE_PARAMS, n_tokens) for _ in range(reps)]
    median: float | None = summary([r.decode_tps for r in runs], 2)["median"]
    return median
