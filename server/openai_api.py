"""The OpenAI-compatible front door: `/v1/models` and `/v1/chat/completions`.

Same scheduler, prompt building and stop logic as `/api/converse`; only the shapes differ,
so any OpenAI client, editor plugin or script works against this server unchanged. A thinking
model's thoughts go out as `reasoning_content`, as llama.cpp's server sends them, and come back
in from assistant messages the same way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.bodies import body_of, check_schema_size, client_of, hung_up
from server.chat import ChatService, Completion
from server.errors import ApiError, openai_error
from server.events import Done, Event, Failed, Text, Thought, ToolCall
from server.images import Located
from wire.routes import Route
from wire.types import MAX_MESSAGES, MAX_TOOLS, MaxTokens, Message, SamplingParams, Seed, Temperature, TopP


class ImageUrl(Struct):
    url: str
    detail: str | None = None


class TextPart(Struct, omit_defaults=True):
    """A part of a message's content: text, or an image (`image_url`)."""

    type: str
    text: str = ""
    image_url: ImageUrl | None = None


class ChatMessage(Struct, omit_defaults=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # an assistant's earlier calls (with tools)
    tool_call_id: str | None = None  # what a tool message answers
    reasoning_content: str | None = None  # an assistant's thoughts (llama.cpp's convention)

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""

    def images(self, where: str) -> list[Located]:
        """The images among its parts, each named by its place (`where` is the message's)."""
        parts = self.content if isinstance(self.content, list) else []
        found = []
        for i, part in enumerate(parts):
            if part.type != "image_url":
                continue
            if part.image_url is None:
                raise ApiError(400, "invalid_request", f"{where}.content[{i}]: an image_url part needs image_url.url")
            if self.role != "user":
                raise ApiError(400, "invalid_request", f"{where}.content[{i}]: images go in user messages")
            found.append(Located(f"{where}.content[{i}]", part.image_url.url))
        return found


class StreamOptions(Struct):
    include_usage: bool = False


class JsonSchema(Struct):
    name: str = ""
    schema: dict[str, Any] = msgspec.field(default_factory=dict)
    strict: bool | None = None


class ResponseFormat(Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None

    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the answer must follow, or None for free text."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.type == "json_schema":
            if self.json_schema is None:
                raise ApiError(400, "invalid_request", "response_format json_schema needs a json_schema")
            return self.json_schema.schema
        return None


# llama.cpp compiles each schema (a tool's parameters, a response format) into a grammar that the
# model thread checks every token against, so a schema's size is bounded as well as its nesting
# (server.bodies). OpenAI itself takes at most 128 tools.
def check_supported(supports: frozenset[str], wanted: dict[str, tuple[str, bool]]) -> None:
    """Refuse a request field (`wanted`: field → the engine feature it needs, and whether it is
    used) that the engine does not honour, naming the field."""
    for name, (feature, used) in wanted.items():
        if used and feature not in supports:
            raise ApiError(400, "unsupported_parameter", f"{name} is not supported by this server's engine")


# Unknown fields are allowed: OpenAI clients send many (user, logprobs, ...) we can ignore.
class Sampled(Struct, kw_only=True):
    """What OpenAI's chat and text completions share: the model, sampling, stops and streaming."""

    model: str | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: Seed | None = None
    stop: str | Annotated[list[str], Meta(max_length=8)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(Sampled):
    messages: Annotated[list[ChatMessage], Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_completion_tokens: MaxTokens | None = None
    response_format: ResponseFormat | None = None
    tools: Annotated[list[dict[str, Any]], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    def check_bounded(self) -> None:
        """Refuse, naming it, a schema too big to compile into a grammar for every token."""
        check_schema_size("response_format", self.response_format.schema() if self.response_format else None)
        for i, tool in enumerate(self.tools or ()):
            check_schema_size(f"tools[{i}]", tool)

    def check_supported(self, supports: frozenset[str]) -> None:
        """Refuse, naming it, a field this server or its engine cannot honour."""
        if self.n not in (None, 1):
            raise ApiError(400, "unsupported_parameter", f"n={self.n}: this server gives one choice per request")
        formatted = self.response_format is not None and self.response_format.type != "text"
        check_supported(supports, {
            "response_format": ("response_format", formatted),
            "tools": ("tools", bool(self.tools) or self.tool_choice not in (None, "none")),
        })

    def tool_request(self) -> dict[str, Any]:
        """The parts of the request that llama.cpp's chat path reads, when tools are used."""
        request: dict[str, Any] = {"messages": [msgspec.to_builtins(m) for m in self.messages], "tools": self.tools}
        if self.tool_choice is not None:
            request["tool_choice"] = self.tool_choice
        if self.parallel_tool_calls is not None:
            request["parallel_tool_calls"] = self.parallel_tool_calls
        return request

    def images(self) -> list[Located]:
        """Every image in the chat, in order, each named by its place in the request."""
        return [image for i, m in enumerate(self.messages) for image in m.images(f"messages[{i}]")]

    def conversation(self) -> tuple[list[Message], SamplingParams, tuple[str, ...]]:
        system = "\n".join(m.text for m in self.messages if m.role in ("system", "developer"))
        messages = [
            Message(m.role == "user", m.text, m.reasoning_content or "", images=[x.url for x in m.images("")])
            for m in self.messages if m.role in ("user", "assistant")
        ]
        params = SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            system=system or None,
        )
        return messages, params, self.stops


MODELS: Route[Any, Any] = Route("GET", "/v1/models")
CHAT_COMPLETIONS: Route[ChatCompletionRequest, Any] = Route("POST", "/v1/chat/completions", ChatCompletionRequest)

FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


def finish_reason(done: Done, calls: list[dict[str, Any]]) -> str:
    return "tool_calls" if calls else FINISH[done.stop_reason]


def usage(done: Done) -> dict[str, int]:
    total = done.prompt_tokens + done.completion_tokens
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens, "total_tokens": total}


async def chat_completions(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, CHAT_COMPLETIONS)
    completion = await start(chats, body, request)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": completion.engine.model}
    if body.stream:
        stream = chunks(head, completion.events, body.include_usage, request)
        return EventSourceResponse(completion.streaming(stream), ping=15)
    return await whole_unless_hung_up(request, completion, collect(head, completion, request))


async def start(chats: ChatService, body: ChatCompletionRequest, request: Request) -> Completion:
    """The answer to a chat completion, once it is checked (every door that amounts to one)."""
    body.check_bounded()
    images = body.images()
    engine = await chats.engine(body.model)
    body.check_supported(engine.supports)
    await chats.check_images(engine, images)
    messages, params, stops = body.conversation()
    schema = body.response_format.schema() if body.response_format else None
    tools = body.tool_request() if body.tools else None
    return await chats.complete(body.model, messages, params, stops, schema, tools, client_of(request))


async def whole_unless_hung_up(request: Request, completion: Completion, answer: Awaitable[Response]) -> Response:
    """The answer in one response; a client that hangs up before it is ready cancels it, as a
    stream's does (every front door's answers that are not streamed)."""
    watcher = asyncio.create_task(cancel_on_hang_up(request, completion))
    try:
        return await answer
    finally:
        watcher.cancel()
        completion.cancel()


async def cancel_on_hang_up(request: Request, completion: Completion) -> None:
    await hung_up(request)
    completion.cancel()


async def collect(head: dict[str, Any], completion: Completion, request: Request) -> Response:
    whole = await completion.gather()
    done = whole.end
    if isinstance(done, Failed):
        return JSONResponse(openai_error(500, done.type, done.message), 500)
    request.state.completion_tokens = done.completion_tokens
    message: dict[str, Any] = {"role": "assistant", "content": whole.text}
    if whole.calls:
        message = {"role": "assistant", "content": whole.text or None, "tool_calls": whole.calls}
    if whole.thoughts:  # llama.cpp's field for them: `content` is the answer alone
        message["reasoning_content"] = whole.thoughts
    choice = {"index": 0, "message": message, "finish_reason": finish_reason(done, whole.calls)}
    return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage(done)})


async def chunks(
    head: dict[str, Any], events: AsyncIterator[Event], include_usage: bool, request: Request
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, str]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return {"data": msgspec.json.encode(body).decode()}

    yield chunk({"role": "assistant", "content": ""})
    calls: list[dict[str, Any]] = []
    async for event in events:
        if isinstance(event, Text):
            yield chunk({"content": event.text})
        elif isinstance(event, Thought):
            yield chunk({"reasoning_content": event.text})
        elif isinstance(event, ToolCall):
            calls.append(event.call)
        elif isinstance(event, Failed):
            body = openai_error(500, event.type, event.message)
            yield {"data": msgspec.json.encode(body).decode()}
        elif isinstance(event, Done):
            request.state.completion_tokens = event.completion_tokens
            if calls:  # whole calls, in one piece each
                yield chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
            yield chunk({}, finish_reason(event, calls))
            if include_usage:
                yield {"data": msgspec.json.encode({**head, "object": "chat.completion.chunk", "choices": [],
                                                    "usage": usage(event)}).decode()}
    yield {"data": "[DONE]"}


async def models(request: Request) -> Response:
    """The usable models, by file name, with what else we know of each."""
    chats: ChatService = request.app.state.chats
    chats.model_named(None)  # 503 while the default model loads
    listing = await chats.models.listing()
    data = [
        {"id": m.name, "object": "model", "created": 0, "owned_by": "snake_llama",
         "meta": {"engine": m.engine, "n_ctx": m.n_ctx, "template": m.template, "loaded": m.loaded,
                  "vision": m.vision}}
        for m in listing.models if m.usable
    ]
    return JSONResponse({"object": "list", "data": data})
