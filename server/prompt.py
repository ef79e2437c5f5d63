"""Chat text shared by the engines: the seed's few-shot template (role markers in message text
neutralised), the control-token texts of the templates we know, and how to keep a user's text
from becoming one.

The seed template works with any completion model, so base models and GGML files get it; chat
models get their own template (see `server.engines.llama_cpp_engine`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from server.engines.base import PromptTemplate
from wire.types import TEMPLATE_NAMES, Message

HUMAN = "### Human:"
ASSISTANT = "### Assistant:"
STOP_MARKERS = ("### Human", "### Assistant")
SEED = PromptTemplate(TEMPLATE_NAMES["seed"], "built-in")

# Control-token texts that llama.cpp treats as end of turn or that open a turn, in the vocabularies we know.
# Those that are special tokens of the loaded model are the stop filter's safety net: the model
# could still spell one out of ordinary tokens, and it must never show.
TURN_MARKERS = (
    "<end_of_turn>", "<start_of_turn>", "<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|start_header_id|>",
    "<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<|eom_id|>",
    "[INST]", "[/INST]", "<|return|>", "<|turn>", "<turn|>", "<eos>", "<|end▁of▁sentence|>",
)
WORD_JOINER = "\u2060"

# Control-token texts: the ones we know, and anything shaped like `<|...|>`.
_CONTROL = "|".join([*(re.escape(m) for m in TURN_MARKERS), r"<\|[^\s<>|]{1,64}\|>"])
_CONTROL_STARTS = re.compile(f"(?=(?:{_CONTROL}))")


def defuse(text: str) -> str:
    """`text` with every control-token text in it broken by a WORD JOINER after its first
    character, so that the remote's tokenizer reads it as plain text (and a user cannot close a
    turn or forge one). Overlapping markers are each broken."""
    starts = [m.start() for m in _CONTROL_STARTS.finditer(text)]
    if not starts:
        return text
    parts, last = [], 0
    for start in starts:
        parts.append(text[last : start + 1])
        last = start + 1
    parts.append(text[last:])
    return WORD_JOINER.join(parts)


def defuse_all(value: Any) -> Any:
    """`value` (a chat request's JSON: messages, tools) with `defuse` applied to every string in
    it, keys included: the template renders names, descriptions and arguments too."""
    if isinstance(value, str):
        return defuse(value)
    if isinstance(value, list):
        return [defuse_all(v) for v in value]
    if isinstance(value, dict):
        return {defuse(k): defuse_all(v) for k, v in value.items()}
    return value


def merge_turns(messages: Sequence[Message]) -> list[Message]:
    """Consecutive messages of one side as one turn: chat templates require roles to alternate."""
    merged: list[Message] = []
    for m in messages:
        if merged and merged[-1].user == m.user:
            thoughts = "\n\n".join(t for t in (merged[-1].thoughts, m.thoughts) if t)
            images = merged[-1].images + m.images
            merged[-1] = Message(m.user, f"{merged[-1].text}\n\n{m.text}", thoughts, images=images)
        else:
            merged.append(m)
    return merged


PREAMBLE = "A chat between a human and an assistant."
FEW_SHOT = (
    f"{ASSISTANT}Hello - How may I help you today?\n"
    f"{HUMAN}What is the capital of France?\n"
    f"{ASSISTANT}Paris is the capital of France.\n"
)

# A message that contains "### Assistant" could otherwise forge a turn: any run of three or
# more '#' before a role name (any case, any spacing) becomes "##", which the model reads as
# ordinary markdown, not as a turn.
_ROLE_MARKER = re.compile(r"#{3,}(?=[ \t]*(?:human|assistant)\b)", re.IGNORECASE)


def neutralise(text: str) -> str:
    return _ROLE_MARKER.sub("##", text)


def head(system: str | None = None) -> str:
    """Everything before the conversation: preamble line and few-shot example.

    `system` replaces the preamble, on one line (the format is a line per turn); None keeps ours,
    and a blank one (a chat set to have no system prompt) leaves the line out.
    """
    if system is None:
        return f"{PREAMBLE}\n{FEW_SHOT}"
    preamble = " ".join(system.split())
    return f"{neutralise(preamble)}\n{FEW_SHOT}" if preamble else FEW_SHOT


def turn(message: Message) -> str:
    role = HUMAN if message.user else ASSISTANT
    return f"{role}{neutralise(message.text.strip())}\n"


def build_prompt(messages: Sequence[Message], system: str | None = None) -> str:
    return head(system) + "".join(turn(m) for m in messages) + ASSISTANT
