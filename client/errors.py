"""What went wrong, in words a user can act on: the one place an error becomes a sentence.

The server's error types (wire.events.ErrorEvent.type) and the page's own (a network failure,
a stream that ended early) each map to what happened and what to do. A browser exception's text
(`TypeError: network error`), a validation path (`$.conversation.messages[0].text`) or an HTTP
body never reaches the page: those are for the server's log, not for the person chatting.
"""

from __future__ import annotations

import re

from wire.events import ErrorEvent
from wire.types import MAX_TEXT

# The page's own types (client.rpc): the server could not be reached, or went away mid-answer.
NETWORK = "network"
DISCONNECTED = "disconnected"
LOST = frozenset({NETWORK, DISCONNECTED})

CONNECTION_LOST = "Lost the connection to the server. Your message is kept: press Regenerate once it is back."
CUT_OFF = "The connection dropped here."
TOO_LONG = f"This message is too long to send: a message holds at most {MAX_TEXT:,} characters. Shorten it."
NOT_OURS = "That file is not a snake_llama chat export (JSON or Markdown)."
NO_CHATS = "That file holds no chats."
SERVER_DOWN = "Cannot reach the server. Retrying on its own; is `make run` still running?"

_PLAIN = {
    "queue_full": "The server is busy with other answers. Try again in a moment.",
    "too_many_answers": "This page already has many answers on their way. Wait for one to end, then try again.",
    "model_loading": "The model is still loading. Try again in a moment.",
    "model_not_found": "This chat's model is no longer on the server. Pick another model and try again.",
    "engine_error": "The model failed while answering. Try again; if it keeps failing, restart the server.",
    "internal_error": "The server hit a problem with this answer. Try again.",
    "request_too_large": "This message is too large for the server to take. Shorten it or attach less.",
    "too_deep": "The server could not read this request. Reload the page and try again.",
    "invalid_json": "The server could not read this request. Reload the page and try again.",
    "unsupported_media_type": "The server could not read this request. Reload the page and try again.",
    "protocol": "The server's answer could not be read. Try again; if it keeps happening, reload the page.",
    "forbidden_origin": "The server does not accept requests from this page's address.",
    "forbidden_host": "The server does not accept requests for this address. Open it at 127.0.0.1 or localhost.",
    "unauthorized": "This server needs an API key.",
    "answer_not_found": "The server no longer has this answer.",
    NETWORK: CONNECTION_LOST,
    DISCONNECTED: CONNECTION_LOST,
}

# A msgspec validation message: "Expected `str` of length <= 100000 - at `$.conversation.messages[0].text`".
_VALIDATION = re.compile(r"^(?P<what>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_TOKENS = re.compile(r"needs (\d+) tokens.*?holds (\d+)", re.DOTALL)


def plain(error: ErrorEvent) -> str:
    """The sentence the page shows for `error`."""
    known = _PLAIN.get(error.type)
    if known is not None:
        return known
    if error.type == "context_length_exceeded":
        return _too_long_for_context(error.message)
    if error.type == "invalid_request":
        return _invalid(error.message)
    if error.type == "model_load_failed":
        return "The model could not be loaded. Pick another model, or see the server's log for why."
    if error.type in ("unsupported_parameter", "no_projector", "invalid_image"):
        return f"The model cannot take this: {_sentence(_without_path(error.message))}"
    if error.type.startswith("http_5"):
        return "The server hit a problem. Try again in a moment."
    if error.type.startswith("http_"):
        return "The server refused this request. Reload the page and try again."
    return _sentence(_without_path(error.message)) or "Something went wrong with this answer. Try again."


def _too_long_for_context(message: str) -> str:
    counts = _TOKENS.search(message)
    said = "This chat is too long for the model"
    if counts:
        needed, held = (int(n) for n in counts.groups())
        said += f" (it needs {needed:,} tokens with the answer, the model holds {held:,})"
    return f"{said}. Shorten the message, start a new chat, or lower Max tokens in Settings."


def _invalid(message: str) -> str:
    found = _VALIDATION.match(message.strip())
    if found is None:
        return _sentence(message)
    path, what = found["path"], found["what"]
    if path.endswith(".text") and "length" in what:
        return TOO_LONG
    if "messages" in path and "length" in what:
        return "This chat has too many messages to send. Start a new chat."
    if path.startswith(".params"):
        return "A setting is out of range. Open Settings, check the values, and try again."
    return "The server could not take this request. Reload the page and try again."


def _without_path(message: str) -> str:
    found = _VALIDATION.match(message.strip())
    return found["what"] if found else message


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
