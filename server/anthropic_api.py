"""Anthropic's Messages API: `POST /v1/messages` (streamed and not) and
`POST /v1/messages/count_tokens`, so that Claude-style clients and agents can use a local model.

The same chat service as the other front doors; only the shapes differ. Text and thinking
blocks map onto our chat; with tools, or tool_use/tool_result blocks in the history, the chat
goes to the engine's tool path as the OpenAI request it amounts to. Errors come in Anthropic's
shape (server.errors), and its clients' `x-api-key` is taken as well as a Bearer key
(server.security). As with the OpenAI door, with one model any name is that model, so a client
that insists on its own model names still works.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.bodies import body_of, check_schema_size, client_of
from server.chat import ChatService, Completion
from server.errors import ApiError, anthropic_error
from server.events import Done, Failed, Text, Thought, ToolCall
from server.images import Located, data_url, image_parts
from server.openai_api import check_supported, whole_unless_hung_up
from wire.routes import Route
from wire.types import (
    MAX_MESSAGES,
    MAX_TOOLS,
    MaxTokens,
    Message,
    ModelName,
    SamplingParams,
    SystemPrompt,
    Temperature,
    TopK,
    TopP,
)
from wire.types import Text as BoundedText

NO_IMAGES = "this server reads no images in tool results"
NO_DOCUMENTS = "this server reads no documents: send their text"


class TextBlock(Struct, tag="text", tag_field="type"):
    text: BoundedText


class ImageBlock(Struct, tag="image", tag_field="type"):
    source: dict[str, Any]

    @property
    def url(self) -> str:
        """The image as a `data:` URL; a URL source is passed on for `base64_of` to refuse (we fetch nothing)."""
        if self.source.get("type") == "base64":
            return data_url(str(self.source.get("data", "")), str(self.source.get("media_type", "")))
        return str(self.source.get("url", ""))


class DocumentBlock(Struct, tag="document", tag_field="type"):
    source: dict[str, Any]


class ToolUseBlock(Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(Struct, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: BoundedText | list[TextBlock | ImageBlock] = ""
    is_error: bool = False

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if any(isinstance(b, ImageBlock) for b in self.content):
            raise ApiError(400, "unsupported_parameter", f"tool_result {self.tool_use_id}: images: {NO_IMAGES}")
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class ThinkingBlock(Struct, tag="thinking", tag_field="type"):
    thinking: BoundedText
    signature: str = ""


class RedactedThinkingBlock(Struct, tag="redacted_thinking", tag_field="type"):
    data: str  # another model's sealed thoughts: nothing a local model can read


Block = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


class AnthropicMessage(Struct):
    role: Literal["user", "assistant"]
    content: BoundedText | list[Block]

    @property
    def blocks(self) -> list[Block]:
        return [TextBlock(self.content)] if isinstance(self.content, str) else self.content


class Tool(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    description: str = ""
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    type: str | None = None  # Anthropic's own server tools (web search, ...) carry a type


class ToolChoice(Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False

    def openai(self) -> str | dict[str, Any]:
        if self.type == "tool":
            if not self.name:
                raise ApiError(400, "invalid_request", "tool_choice of type tool needs the tool's name")
            return {"type": "function", "function": {"name": self.name}}
        return {"auto": "auto", "any": "required", "none": "none"}[self.type]


# Unknown fields are allowed, as Anthropic's clients send metadata, thinking, service_tier, ...
class Chat(Struct, kw_only=True):
    """What /v1/messages and its count_tokens share: the chat and its tools."""

    model: ModelName
    messages: Annotated[list[AnthropicMessage], Meta(min_length=1, max_length=MAX_MESSAGES)]
    system: SystemPrompt | list[TextBlock] | None = None
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None

    def system_text(self) -> str | None:
        if isinstance(self.system, list):
            return "\n".join(b.text for b in self.system) or None
        return self.system or None

    def uses_tools(self) -> bool:
        blocks = (b for m in self.messages for b in m.blocks)
        return bool(self.tools) or any(isinstance(b, ToolUseBlock | ToolResultBlock) for b in blocks)

    def check(self) -> None:
        """Refuse, naming it, what cannot go to a local model."""
        for i, tool in enumerate(self.tools or ()):
            if tool.type not in (None, "custom"):
                raise ApiError(400, "unsupported_parameter", f"tools[{i}]: {tool.type} is Anthropic's own tool")
            check_schema_size(f"tools[{i}]", tool.input_schema)
        for i, message in enumerate(self.messages):
            for j, block in enumerate(message.blocks):
                if isinstance(block, DocumentBlock):
                    where = f"messages[{i}].content[{j}]"
                    raise ApiError(400, "unsupported_parameter", f"{where}: documents: {NO_DOCUMENTS}")
                if isinstance(block, ImageBlock) and message.role != "user":
                    raise ApiError(400, "invalid_request", f"messages[{i}].content[{j}]: images go in user messages")

    def located(self) -> list[Located]:
        """The chat's images, each named by its place."""
        return [
            Located(f"messages[{i}].content[{j}]", block.url)
            for i, m in enumerate(self.messages) for j, block in enumerate(m.blocks) if isinstance(block, ImageBlock)
        ]

    def chat(self) -> list[Message]:
        """The chat as our messages: text and thoughts (sealed thoughts are left out)."""
        return [
            Message(
                m.role == "user",
                "".join(b.text for b in m.blocks if isinstance(b, TextBlock)),
                "".join(b.thinking for b in m.blocks if isinstance(b, ThinkingBlock)),
                images=images_of(m),
            )
            for m in self.messages
        ]

    def tool_request(self) -> dict[str, Any]:
        """The chat as the OpenAI request the engine's tool path renders."""
        messages: list[dict[str, Any]] = []
        system = self.system_text()
        if system:
            messages.append({"role": "system", "content": system})
        for m in self.messages:
            messages.extend(openai_messages(m))
        request: dict[str, Any] = {"messages": messages}
        if self.tools:
            request["tools"] = [
                {"type": "function",
                 "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
                for t in self.tools
            ]
        if self.tool_choice is not None:
            request["tool_choice"] = self.tool_choice.openai()
            if self.tool_choice.disable_parallel_tool_use:
                request["parallel_tool_calls"] = False
        return request


def images_of(message: AnthropicMessage) -> list[str]:
    return [b.url for b in message.blocks if isinstance(b, ImageBlock)]


def openai_messages(message: AnthropicMessage) -> list[dict[str, Any]]:
    """One Anthropic message as OpenAI's: a user's tool results become tool messages of their own,
    an assistant's tool_use blocks its tool_calls."""
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    if message.role == "user":
        results = [{"role": "tool", "tool_call_id": b.tool_use_id, "content": b.text}
                   for b in message.blocks if isinstance(b, ToolResultBlock)]
        asked = {"role": "user", "content": image_parts(text, images_of(message))}
        return [*results, asked] if text or images_of(message) or not results else results
    calls = [{"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
             for b in message.blocks if isinstance(b, ToolUseBlock)]
    said: dict[str, Any] = {"role": "assistant", "content": text or None}
    thoughts = "".join(b.thinking for b in message.blocks if isinstance(b, ThinkingBlock))
    if thoughts:
        said["reasoning_content"] = thoughts
    return [{**said, "tool_calls": calls} if calls else said]


class OutputFormat(Struct):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfig(Struct):
    format: OutputFormat | None = None
    effort: str | None = None  # how hard a model of Anthropic's thinks: a local model's template decides


class MessagesRequest(Chat, kw_only=True):
    max_tokens: MaxTokens
    stop_sequences: Annotated[list[str], Meta(max_length=8)] | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    stream: bool = False
    output_config: OutputConfig | None = None

    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the answer must follow (structured outputs), bounded like a tool's."""
        if self.output_config is None or self.output_config.format is None:
            return None
        check_schema_size("output_config.format", self.output_config.format.schema)
        return self.output_config.format.schema

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
            system=self.system_text(),
        )


class CountRequest(Chat, kw_only=True):
    pass


MESSAGES: Route[MessagesRequest, Any] = Route("POST", "/v1/messages", MessagesRequest)
COUNT_TOKENS: Route[CountRequest, Any] = Route("POST", "/v1/messages/count_tokens", CountRequest)


async def messages(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, MESSAGES)
    body.check()
    await chats.check_images(await chats.engine(body.model), body.located())
    tools = body.tool_request() if body.uses_tools() else None
    schema = body.schema()
    check_supported((await chats.engine(body.model)).supports, {
        "tools": ("tools", tools is not None), "output_config.format": ("response_format", schema is not None),
    })
    stops = tuple(s for s in body.stop_sequences or () if s)
    chat = body.chat() if tools is None else []
    completion = await chats.complete(body.model, chat, body.sampling(), stops, schema, tools, client_of(request))
    head = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": completion.engine.model}
    reply = Reply(head, stops, request)
    if body.stream:
        return EventSourceResponse(completion.streaming(events(reply, completion)), ping=15)
    return await whole_unless_hung_up(request, completion, whole(reply, completion))


async def count_tokens(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, COUNT_TOKENS)
    body.check()
    tools = body.tool_request() if body.uses_tools() else None
    chat = body.chat() if tools is None else []
    n = await chats.count_chat(body.model, chat, body.system_text(), tools, client_of(request))
    return JSONResponse({"input_tokens": n})


class Reply:
    """What the answer's two shapes share: its head, how it ended, and its usage."""

    def __init__(self, head: dict[str, Any], stops: tuple[str, ...], request: Request) -> None:
        self.head = head
        self.stops = stops
        self.request = request

    def ending(self, done: Done, called: bool) -> dict[str, Any]:
        self.request.state.completion_tokens = done.completion_tokens
        if called:
            return {"stop_reason": "tool_use", "stop_sequence": None}
        if done.stop_reason == "length":
            return {"stop_reason": "max_tokens", "stop_sequence": None}
        if done.stop_sequence is not None and done.stop_sequence in self.stops:
            return {"stop_reason": "stop_sequence", "stop_sequence": done.stop_sequence}
        return {"stop_reason": "end_turn", "stop_sequence": None}


def tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    arguments = function.get("arguments") or "{}"
    return {"type": "tool_use", "id": call.get("id") or f"toolu_{uuid.uuid4().hex}", "name": function["name"],
            "input": json.loads(arguments) if isinstance(arguments, str) else arguments}


async def whole(reply: Reply, completion: Completion) -> Response:
    answer = await completion.gather()
    done = answer.end
    if isinstance(done, Failed):
        return JSONResponse(anthropic_error(500, done.type, done.message), 500)
    content: list[dict[str, Any]] = []
    if answer.thoughts:
        content.append({"type": "thinking", "thinking": answer.thoughts, "signature": ""})
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    content += [tool_use(call) for call in answer.calls]
    usage = {"input_tokens": done.prompt_tokens, "output_tokens": done.completion_tokens}
    return JSONResponse({**reply.head, "content": content, **reply.ending(done, bool(answer.calls)), "usage": usage})


def sse(kind: str, **data: Any) -> dict[str, str]:
    return {"event": kind, "data": msgspec.json.encode({"type": kind, **data}).decode()}


async def events(reply: Reply, completion: Completion) -> AsyncIterator[dict[str, str]]:
    """Anthropic's stream: the message, then each content block opened, filled and closed."""
    usage = {"input_tokens": completion.prompt_tokens, "output_tokens": 0}
    yield sse("message_start", message={**reply.head, "content": [], "stop_reason": None, "stop_sequence": None,
                                        "usage": usage})
    blocks = Blocks()
    async for event in completion.events:
        if isinstance(event, Text | Thought):
            kind = "text" if isinstance(event, Text) else "thinking"
            for opened in blocks.open(kind):
                yield opened
            delta = {"type": "text_delta", "text": event.text} if kind == "text" else \
                {"type": "thinking_delta", "thinking": event.text}
            yield sse("content_block_delta", index=blocks.index, delta=delta)
        elif isinstance(event, ToolCall):
            call = tool_use(event.call)
            for opened in blocks.open("tool_use", {**call, "input": {}}):
                yield opened
            delta = {"type": "input_json_delta", "partial_json": json.dumps(call["input"])}
            yield sse("content_block_delta", index=blocks.index, delta=delta)
            blocks.called = True
        elif isinstance(event, Failed):
            failed = anthropic_error(500, event.type, event.message)
            yield {"event": "error", "data": msgspec.json.encode(failed).decode()}
            return
        elif isinstance(event, Done):
            for closed in blocks.close():
                yield closed
            yield sse("message_delta", delta=reply.ending(event, blocks.called),
                      usage={"output_tokens": event.completion_tokens})
            yield sse("message_stop")


EMPTY = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "", "signature": ""}}


class Blocks:
    """The stream's content blocks: one is open at a time, and a new kind of content opens the next."""

    def __init__(self) -> None:
        self.index = -1
        self.kind: str | None = None
        self.called = False

    def open(self, kind: str, block: dict[str, Any] | None = None) -> list[dict[str, str]]:
        if kind == self.kind and kind != "tool_use":
            return []
        events = self.close()
        self.index, self.kind = self.index + 1, kind
        return [*events, sse("content_block_start", index=self.index, content_block=block or EMPTY[kind])]

    def close(self) -> list[dict[str, str]]:
        if self.kind is None:
            return []
        self.kind = None
        return [sse("content_block_stop", index=self.index)]


Handler = Callable[[Request], Awaitable[Response]]
ROUTES: tuple[tuple[Route[Any, Any], Handler], ...] = ((MESSAGES, messages), (COUNT_TOKENS, count_tokens))
