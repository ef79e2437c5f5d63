"""Sampling defaults, resolved once above the engines, so every engine samples alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wire.types import SamplingParams

TEMPERATURE = 0.7
TOP_P = 0.95
TOP_K = 40
REPEAT_PENALTY = 1.1


@dataclass(frozen=True)
class Sampling:
    """Every knob an engine needs, with the request's values or our defaults."""

    max_tokens: int
    temperature: float = TEMPERATURE
    top_p: float = TOP_P
    top_k: int = TOP_K
    repeat_penalty: float = REPEAT_PENALTY
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
