"""Tool calls for a model whose chat template knows no tools (the seed's, a base model's, Gemma's).

llama.cpp calls tools in the format a template knows; given any other template it renders the
tools nowhere and lets the model ramble. Here the tools are described in the system prompt
instead, and a grammar holds the answer to either one JSON call, `{"tool": name, "arguments":
{...}}` with arguments that fit the tool's schema, or plain text that does not start with `{`
(`tool_choice: "auto"`); to a call alone for `"required"` or a named function. An answer that
starts with `{` is therefore a call, held back until it is whole and passed on as a `ToolCall`.

Earlier calls go back into the chat as the JSON the model wrote, and tool results as turns of
their own ("Result of get_weather: ..."), so any template renders them as readable turns.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from server.engines.base import Piece, TemplateError, Text, ToolCall
from wire.types import Message

ANY_TEXT = r"/[^{][\s\S]*/"  # a lexeme of llguidance's grammar: text that cannot be mistaken for a call


def _text(content: object) -> str:
    """A message's content: a string, or parts of which the text ones count."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def _images(content: object) -> list[str]:
    """The data URLs of a message's image parts."""
    parts = content if isinstance(content, list) else []
    images = [p.get("image_url") or {} for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    urls = [image.get("url") for image in images if isinstance(image, dict)]
    return [url for url in urls if isinstance(url, str)]


def written(name: str, arguments: object) -> str:
    """A call as the model writes it (and as it reads its earlier calls)."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # not JSON: written as the text it is
            arguments = json.loads(arguments or "{}")
    return json.dumps({"tool": name, "arguments": arguments}, ensure_ascii=False)


def as_chat(messages: list[dict[str, Any]]) -> tuple[list[Message], str]:
    """An OpenAI chat, tool calls and results included, as our messages and its system prompt."""
    system: list[str] = []
    chat: list[Message] = []
    names: dict[str, str] = {}  # call id -> tool name, for the results
    for m in messages:
        role, text = m.get("role"), _text(m.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            chat.append(Message(True, text, images=_images(m.get("content"))))
        elif role == "assistant":
            calls = [c for c in m.get("tool_calls") or () if isinstance(c.get("function"), dict)]
            for c in calls:
                names[str(c.get("id"))] = c["function"].get("name", "")
            said = [text] if text else []
            said += [written(c["function"].get("name", ""), c["function"].get("arguments")) for c in calls]
            chat.append(Message(False, "\n".join(said), str(m.get("reasoning_content") or "")))
        elif role == "tool":
            name = names.get(str(m.get("tool_call_id")), m.get("name") or "the tool")
            chat.append(Message(True, f"Result of {name}: {text}"))
    return chat, "\n".join(system)


def closed(schema: object) -> dict[str, Any]:
    """A tool's parameters, no arguments beyond those named where the schema does not say: a small
    model copies the schema's own words ("type") into its arguments otherwise. Still the schema's."""
    if not isinstance(schema, dict) or not schema:
        return {"type": "object"}
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


def example(function: dict[str, Any]) -> str:
    """A call of `function` with its arguments' names, as the system prompt shows one."""
    properties = (function.get("parameters") or {}).get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    return written(function["name"], {name: "..." for name in names})


@dataclass(frozen=True)
class GrammarTools:
    """One OpenAI chat request's tools, called under a grammar."""

    tools: tuple[dict[str, Any], ...]  # each tool's `function`: name, description, parameters
    required: bool  # a call is the only answer (`"required"`, or one function named)

    @classmethod
    def of(cls, request: dict[str, Any]) -> GrammarTools | None:
        """The tools a request offers, as its `tool_choice` narrows them; None when it offers none."""
        functions = [t["function"] for t in request.get("tools") or () if isinstance(t.get("function"), dict)]
        choice = request.get("tool_choice", "auto")
        if not functions or choice == "none":
            return None
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            chosen = [f for f in functions if f.get("name") == name]
            if not chosen:
                raise TemplateError(f"tool_choice names {name!r}, which is not among the tools")
            return cls(tuple(chosen), True)
        return cls(tuple(functions), choice == "required")

    def system(self, system: str) -> str:
        """The system prompt with the tools described and how to call one."""
        listed = "\n".join(
            f"- {f['name']}: {f.get('description') or 'no description'}"
            f" Arguments (JSON schema): {json.dumps(f.get('parameters') or {'type': 'object'})}"
            for f in self.tools
        )
        how = "Answer with one JSON object" if self.required else "To call a tool, answer with only a JSON object"
        words = "" if self.required else " Otherwise answer in words."
        tools = f"You can call these tools:\n{listed}\n{how}, such as {example(self.tools[0])}.{words}"
        return f"{system.strip()}\n\n{tools}" if system.strip() else tools

    def grammar(self, json_schema: dict[str, Any] | None = None) -> str:
        """An llguidance grammar (llama.cpp's `grammar` field) for the answer; `json_schema`: the
        one a text answer must follow (a response format), else any text not opening with `{`."""
        calls = [
            {"type": "object", "additionalProperties": False, "required": ["tool", "arguments"],
             "properties": {"tool": {"const": f["name"]}, "arguments": closed(f.get("parameters"))}}
            for f in self.tools
        ]
        call = calls[0] if len(calls) == 1 else {"anyOf": calls}
        text = f"%json {json.dumps(json_schema)}" if json_schema is not None else ANY_TEXT
        start = "call" if self.required else f"call | text\ntext: {text}"
        return f"%llguidance {{}}\nstart: {start}\ncall: %json {json.dumps(call)}\n"

    def call(self, text: str) -> dict[str, Any] | None:
        """The call an answer is, in OpenAI's shape; None if it is not one (cut short, say)."""
        try:
            said = json.loads(text)
        except ValueError:
            return None
        names = {f["name"] for f in self.tools}
        if not isinstance(said, dict) or said.get("tool") not in names or not isinstance(said.get("arguments"), dict):
            return None
        arguments = json.dumps(said["arguments"], ensure_ascii=False)
        return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": said["tool"], "arguments": arguments}}

    def pieces(self, pieces: Iterator[Piece]) -> Generator[Piece, None, None]:
        """The answer's pieces, a call held back until whole and passed on as a `ToolCall`."""
        held: list[str] | None = None
        started = False
        try:
            for piece in pieces:
                if isinstance(piece, Text) and piece.text:
                    if not started:
                        started, held = True, [] if piece.text.startswith("{") else None
                    if held is not None:
                        held.append(piece.text)
                        continue
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        if held is not None:
            text = "".join(held)
            call = self.call(text)
            yield ToolCall(call) if call is not None else Text(text)


@dataclass(frozen=True)
class ToolTurn:
    """A chat with tools, rendered: the prompt's tokens, and the tools its answer may call."""

    tokens: list[int]
    tools: GrammarTools | None  # None: tools are off (`tool_choice: "none"`), the history has them
