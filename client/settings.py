"""The settings form as data: field limits, parsing form text into `SamplingParams`, storage.

An empty field means "the server's default", so Reset is simply an empty `SamplingParams`.
The limits come from wire.types' bounded types: the form shows them, msgspec enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from wire.types import SYSTEM_MAX, MaxTokens, RepeatPenalty, SamplingParams, Seed, Temperature, TopK, TopP, bounds

SETTINGS_KEY = "settings"


@dataclass(frozen=True)
class Field:
    name: str  # SamplingParams attribute, and the form control's id after "set-"
    label: str
    kind: type  # int or float
    low: float
    high: float
    step: str
    hint: str


FIELDS = (
    Field("temperature", "Temperature", float, *bounds(Temperature), "0.05", "0 = always the likeliest token"),
    Field("top_p", "Top-p", float, *bounds(TopP), "0.05", "nucleus sampling"),
    Field("top_k", "Top-k", int, *bounds(TopK), "1", "0 = off"),
    Field("repeat_penalty", "Repeat penalty", float, *bounds(RepeatPenalty), "0.05", "1 = off"),
    Field("max_tokens", "Max tokens", int, *bounds(MaxTokens), "1", "length limit of one answer"),
    Field("seed", "Seed", int, *bounds(Seed), "1", "same seed, same answer"),
)


def parse(form: dict[str, str]) -> tuple[SamplingParams, dict[str, str]]:
    """Form text -> params, plus an error message per field that is not valid (those are left out)."""
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for f in FIELDS:
        raw = form.get(f.name, "").strip()
        if not raw:
            continue
        try:
            number = f.kind(raw)
        except ValueError:
            errors[f.name] = f"{f.label} must be {'a whole number' if f.kind is int else 'a number'}"
            continue
        if not f.low <= number <= f.high:
            errors[f.name] = f"{f.label} must be between {f.kind(f.low)} and {f.kind(f.high)}"
            continue
        values[f.name] = number
    system = form.get("system", "").strip()
    if system:
        values["system"] = system[:SYSTEM_MAX]
    return SamplingParams(**values), errors  # type: ignore[arg-type]


def form_of(params: SamplingParams) -> dict[str, str]:
    """Params -> the text each form control shows."""
    out = {f.name: "" if getattr(params, f.name) is None else str(getattr(params, f.name)) for f in FIELDS}
    out["system"] = params.system or ""
    return out


def dump(params: SamplingParams) -> str:
    return msgspec.json.encode(params).decode()


def load(stored: object) -> SamplingParams:
    if not isinstance(stored, str):
        return SamplingParams()
    try:
        return msgspec.json.decode(stored, type=SamplingParams)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return SamplingParams()
