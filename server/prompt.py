"""The seed's few-shot chat template, with role markers in message text neutralised.

It works with any completion model, so base models and GGML files get it; chat models get their
own template (see `server.engines.llama_server`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from client.protocol import Message
from server.engines.base import TemplateInfo

HUMAN = "### Human:"
ASSISTANT = "### Assistant:"
STOP_MARKERS = ("### Human", "### Assistant")
SEED = TemplateInfo("seed (### Human / ### Assistant)", "built-in")

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
    """Everything before the conversation: preamble line and few-shot example."""
    preamble = neutralise(" ".join(system.split())) if system and system.strip() else PREAMBLE
    return f"{preamble}\n{FEW_SHOT}"


def turn(message: Message) -> str:
    role = HUMAN if message.user else ASSISTANT
    return f"{role}{neutralise(message.text.strip())}\n"


def build_prompt(messages: Sequence[Message], system: str | None = None) -> str:
    return head(system) + "".join(turn(m) for m in messages) + ASSISTANT
