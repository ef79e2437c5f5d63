"""The engine protocol: everything above it (prompt, stops, scheduling, streaming) is shared."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from client.protocol import SamplingParams


class EngineError(Exception):
    """A failure an engine reports in words a user can act on."""


class ModelLoadError(EngineError):
    """The model cannot be loaded: the message names the problem and the fix."""


@dataclass
class Generation:
    """Counters an engine fills in while `stream` runs."""

    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (end of text) or "length"


class Engine(Protocol):
    name: str
    model: str
    n_ctx: int

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in a prompt (without BOS)."""
        ...

    def stream(self, prompt: str, params: SamplingParams, gen: Generation) -> Iterator[str]:
        """Yield text pieces (whole UTF-8 characters) of the completion of `prompt`.

        Stopping iteration (closing the generator) cancels the generation. Stop markers are
        handled above the engine; the engine stops at end of text or `params.max_tokens`.
        """
        ...
