"""The engine protocol: everything above it (context fitting, stops, scheduling, streaming) is shared.

An engine renders a chat into a `Prompt` (its own form: token ids, text or messages, with the
token count that context fitting needs), then streams the answer to that prompt as a
`Generation` of typed pieces: answer `Text`, `Thought`s reported apart, whole `ToolCall`s and
prompt-reading `Progress`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from server.sampling import Sampling
from wire.types import Message

FinishReason = Literal["stop", "length"]


class EngineError(Exception):
    """A failure an engine reports in words a user can act on."""


class ModelLoadError(EngineError):
    """The model cannot be loaded: the message names the problem and the fix."""


class TemplateError(EngineError):
    """The model's chat template refused the conversation (the message says why)."""


@dataclass(frozen=True)
class PromptTemplate:
    """The prompt template in use and where it came from (shown by /health and the page)."""

    name: str
    source: str


@dataclass(frozen=True)
class Prompt:
    """A chat rendered for one engine. `payload` is the engine's own form of it, opaque to the
    rest of the server; `stops` are text markers the stop filter hides if the model writes them;
    `thinking`: the prompt ends inside a think block its template opened, so the answer starts
    with thoughts; `may_think`: the model may write think blocks at all (False for a prompt format
    that knows none, so that a base model writing "<think>" in its answer is not hidden as thoughts)."""

    n_tokens: int
    stops: tuple[str, ...]
    payload: object
    thinking: bool = False
    may_think: bool = True


@dataclass
class Usage:
    """What an answer cost; final once its pieces are exhausted or closed."""

    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    draft_tokens: int = 0  # speculative decoding: tokens drafted...
    draft_accepted: int = 0  # ...and how many of them the model kept

    @property
    def draft_acceptance(self) -> float | None:
        """The share of drafted tokens the model kept; None where nothing was drafted."""
        return round(self.draft_accepted / self.draft_tokens, 4) if self.draft_tokens else None


@dataclass(frozen=True)
class Text:
    """The model's text, in whole UTF-8 characters. Where the prompt may think it may hold think
    tags, which the scheduler splits off; stop markers are hidden there too."""

    text: str


@dataclass(frozen=True)
class Thought:
    """Reasoning the engine reports apart from the answer (llama.cpp's and vLLM's `reasoning_content`)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """One whole tool call, in OpenAI's shape (`id`, `type`, `function` with `name` and `arguments`)."""

    call: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """How far the engine has read the prompt: `processed` of `total` tokens, `cached` of them
    restored from its cache rather than read."""

    processed: int
    total: int
    cached: int


Piece = Text | Thought | ToolCall | Progress


@dataclass
class Generation:
    """A running answer: iterate for its pieces; closing it cancels the answer and frees the
    engine's slot."""

    pieces: Generator[Piece, None, None]
    usage: Usage = field(default_factory=Usage)

    def __iter__(self) -> Iterator[Piece]:
        return self.pieces

    def close(self) -> None:
        self.pieces.close()


class Engine(Protocol):
    # Read-only to everything above the engine; an engine may use plain attributes.
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def n_ctx(self) -> int:
        """Tokens one chat may hold: prompt plus answer."""
        ...

    @property
    def parallel(self) -> int:
        """Answers it streams at once; the scheduler runs that many."""
        ...

    @property
    def capacity(self) -> int:
        """Tokens (prompts plus answer budgets) the answers running at once may hold together."""
        ...

    @property
    def template(self) -> PromptTemplate: ...

    @property
    def supports(self) -> frozenset[str]:
        """The OpenAI request fields beyond the basics that it honours ("response_format",
        "tools"); a request using another one is refused, never silently ignored."""
        ...

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        """The prompt for `messages` (the last one is the user's), counted in tokens."""
        ...

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        """Start answering `prompt`; generation ends at end of turn or `sampling.max_tokens`.
        An engine may stop at `prompt.stops` itself, to stop generating early; the scheduler
        hides a marker either way, however the text is cut."""
        ...

    def close(self) -> None:
        """Free the model (or the connection). Never hangs."""
        ...


@runtime_checkable
class ToolEngine(Protocol):
    """An engine that runs OpenAI chat requests with tools itself (its template renders them and
    it parses the calls out of the answer)."""

    def render_chat(self, request: dict[str, Any]) -> Prompt:
        """The prompt for an OpenAI chat request: `messages`, `tools`, `tool_choice`..."""
        ...


@runtime_checkable
class TextEngine(Protocol):
    """An engine that continues raw text (OpenAI's legacy completions) as well as chats."""

    def render_text(self, text: str) -> Prompt:
        """The prompt for `text` as it stands, no template around it; control-token text in it
        stays plain text."""
        ...


@runtime_checkable
class ContinuingEngine(Protocol):
    """An engine that can go on with an answer the model began (our API's `continue`)."""

    def extend(self, prompt: Prompt, text: str) -> Prompt:
        """`prompt` (a chat rendered up to where the model's answer opens) with `text` after it,
        as plain text: control-token text in it stays text, and the model writes on from its end."""
        ...


@runtime_checkable
class ProcessEngine(Protocol):
    """An engine whose model lives in a process of its own, which can end under it (killed for
    memory, a crash in native code)."""

    def ended(self) -> str:
        """Why its process is gone ("" while it runs); such an engine answers nothing more."""
        ...


@runtime_checkable
class VisionEngine(Protocol):
    """An engine that may take images in messages (`Message.images`)."""

    @property
    def vision(self) -> bool:
        """A vision projector goes with the model: it takes images."""
        ...

    def image_tokens(self, url: str) -> int:
        """The tokens an image (a `data:` URL) takes in a prompt; `server.images.ImageError`
        saying why the model cannot take it."""
        ...
