"""Sampling defaults, resolved once above the engines, so every engine samples alike.

The defaults are llama.cpp's own (`common_params_sampling` in its common/common.h, which its
server applies to a request that does not say): what a client of any llama.cpp server expects.
Above all no repetition penalty: one bends code and makes a model refuse to repeat a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wire.types import SamplingParams

# llama.cpp's defaults (xllamacpp's CommonParams().sampling: temp, top_p, top_k, penalty_repeat, min_p)
TEMPERATURE = 0.8
TOP_P = 0.95
TOP_K = 40
REPEAT_PENALTY = 1.0
MIN_P = 0.05  # no request sets it; sent so that the llama.cpp engine never depends on its build's default


@dataclass(frozen=True)
class Sampling:
    """Every knob an engine needs, with the request's values or our defaults."""

    max_tokens: int
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    top_k: int = TOP_K
    repeat_penalty: float = REPEAT_PENALTY
    min_p: float = MIN_P  # engines without min-p (ctransformers) leave it out
    seed: int | None = None  # None: a fresh seed per answer
    json_schema: dict[str, Any] | None = None  # the answer must be JSON of this schema


def resolve(params: SamplingParams, max_tokens: int) -> Sampling:
    """The request's sampling values, with `max_tokens` (the MAX_TOKENS setting) and our defaults
    for what it leaves out."""
    return Sampling(
        max_tokens=params.max_tokens or max_tokens,
        temperature=TEMPERATURE if params.temperature is None else params.temperature,
        top_p=TOP_P if params.top_p is None else params.top_p,
        top_k=TOP_K if params.top_k is None else params.top_k,
        repeat_penalty=REPEAT_PENALTY if params.repeat_penalty is None else params.repeat_penalty,
        seed=params.seed,
    )
