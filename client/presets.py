"""Named sampling presets, and what a chat sends: the global settings, its preset, its system prompt.

A preset is a `SamplingParams` without a system prompt: the fields it sets override the global
settings (client.settings), the ones it leaves empty keep them. A few are built in; the user saves
more from the Settings dialog, kept in the browser's store under `PRESETS_KEY`. A chat names its
preset (`Chat.preset`, "" = none) and may have its own system prompt (`Chat.system`); `params_for`
is the one place that combines them. No DOM: this runs on CPython in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from msgspec.structs import replace

from client.settings import FIELDS
from client.state import Chat
from wire.types import SamplingParams

PRESETS_KEY = "presets"  # the store's key for the user's own presets (a JSON object: name -> params)
NAME_MAX = 40

# Built in, from careful to loose; the temperature is what tells them apart. Balanced is
# llama.cpp's own defaults, which the server also uses for what a request leaves out (server.sampling;
# a test holds the two equal). Only Creative penalises repeats: a penalty bends code and lists.
BUILT_IN: dict[str, SamplingParams] = {
    # Facts, code, extraction: nearly always the likeliest token.
    "Precise": SamplingParams(temperature=0.2, top_p=0.9, top_k=20, repeat_penalty=1.0),
    # Everyday chat: llama.cpp's own defaults.
    "Balanced": SamplingParams(temperature=0.8, top_p=0.95, top_k=40, repeat_penalty=1.0),
    # Stories and ideas: more varied words, a wider pool to draw from.
    "Creative": SamplingParams(temperature=1.2, top_p=0.98, top_k=100, repeat_penalty=1.05),
}

Presets = Mapping[str, SamplingParams]


def clean_name(name: str) -> str:
    return " ".join(name.split())[:NAME_MAX]


def name_error(name: str) -> str:
    """Why `name` cannot name a user preset; "" if it can."""
    name = clean_name(name)
    if not name:
        return "Give the preset a name"
    if name.casefold() in {b.casefold() for b in BUILT_IN}:
        return f"{name} is a built-in preset: choose another name"
    return ""


def sampling_only(params: SamplingParams) -> SamplingParams:
    """`params` as a preset: the system prompt is the chat's business, not the preset's."""
    return replace(params, system=None)


def saved(user: Presets, name: str, params: SamplingParams) -> dict[str, SamplingParams]:
    """The user's presets with `params` saved as `name` (replacing one of that name); check `name_error` first."""
    return {**user, clean_name(name): sampling_only(params)}


def deleted(user: Presets, name: str) -> dict[str, SamplingParams]:
    return {k: v for k, v in user.items() if k != name}


def every(user: Presets) -> dict[str, SamplingParams]:
    """Built-in presets first, then the user's own by name."""
    return {**BUILT_IN, **{k: user[k] for k in sorted(user, key=str.casefold) if k not in BUILT_IN}}


def describe(params: SamplingParams) -> str:
    """The values a preset sets, as the Settings form names them."""
    parts = [f"{f.label} {getattr(params, f.name)}" for f in FIELDS if getattr(params, f.name) is not None]
    return " · ".join(parts) or "sets nothing: the default settings apply"


def params_for(chat: Chat, params: SamplingParams, user: Presets) -> SamplingParams:
    """What `chat` sends: the global `params`, overridden by the fields its preset sets, with its own
    system prompt if it has one ("": none at all, which the server takes as such). A preset that
    no longer exists is ignored."""
    preset = every(user).get(chat.preset) if chat.preset else None
    if preset is not None:
        names = [f.name for f in FIELDS]
        params = replace(params, **{n: getattr(preset, n) for n in names if getattr(preset, n) is not None})
    if chat.system is not None:
        params = replace(params, system=chat.system)
    return params


_decoder = msgspec.json.Decoder(dict[str, SamplingParams])


def dump(user: Presets) -> str:
    return msgspec.json.encode(dict(user)).decode()


def load(stored: object) -> dict[str, SamplingParams]:
    """The user's presets from the store; nothing if missing or unreadable."""
    if not isinstance(stored, str):
        return {}
    try:
        found = _decoder.decode(stored)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}
    return {clean_name(k): sampling_only(v) for k, v in found.items() if not name_error(k)}
