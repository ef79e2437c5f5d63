"""The OpenAI-compatible front door: `/v1/models` and `/v1/chat/completions`.

Same scheduler, prompt building and stop logic as `/api/converse`; only the shapes differ,
so any OpenAI client, editor plugin or script works against this server unchanged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from client.protocol import (
    DoneEvent,
    ErrorEvent,
    MaxTokens,
    Message,
    SamplingParams,
    Seed,
    Temperature,
    TokenEvent,
    TopP,
)
from server.api import decode_body, read_body
from server.chat import scheduler_of, start_chat
from server.errors import error_body
from server.settings import Settings


class TextPart(Struct):
    type: str
    text: str = ""


class ChatMessage(Struct):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(Struct):
    include_usage: bool = False


# Unknown fields are allowed: OpenAI clients send many (n, user, logprobs, ...) we can ignore.
class ChatCompletionRequest(Struct):
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    model: str | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: Seed | None = None
    stop: str | Annotated[list[str], Meta(max_length=8)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    def conversation(self) -> tuple[list[Message], SamplingParams, tuple[str, ...]]:
        system = "\n".join(m.text for m in self.messages if m.role in ("system", "developer"))
        messages = [Message(m.role == "user", m.text) for m in self.messages if m.role in ("user", "assistant")]
        params = SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            system=system or None,
        )
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return messages, params, stops


FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


def usage(done: DoneEvent) -> dict[str, int]:
    total = done.prompt_tokens + done.completion_tokens
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens, "total_tokens": total}


async def chat_completions(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    scheduler = scheduler_of(request)
    body = decode_body(await read_body(request, settings.max_body_bytes), ChatCompletionRequest)
    messages, params, stops = body.conversation()
    job = await start_chat(scheduler, settings, messages, params, stops)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": scheduler.engine.model}
    events = scheduler.events(job)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(stream_chunks(head, events, include_usage, request), ping=15)
    text: list[str] = []
    async for event in events:
        if isinstance(event, TokenEvent):
            text.append(event.text)
        elif isinstance(event, ErrorEvent):
            return JSONResponse(error_body(request.url.path, 500, event.type, event.message), 500)
        elif isinstance(event, DoneEvent):
            request.state.completion_tokens = event.completion_tokens
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(text)},
                "finish_reason": FINISH[event.stop_reason],
            }
            return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage(event)})
    raise RuntimeError("the answer ended without a done event")  # pragma: no cover - scheduler guarantees one


async def stream_chunks(
    head: dict[str, Any], events: AsyncIterator[object], include_usage: bool, request: Request
) -> AsyncIterator[dict[str, str]]:
    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> dict[str, str]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return {"data": msgspec.json.encode(body).decode()}

    yield chunk({"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, TokenEvent):
            yield chunk({"content": event.text})
        elif isinstance(event, ErrorEvent):
            body = error_body(request.url.path, 500, event.type, event.message)
            yield {"data": msgspec.json.encode(body).decode()}
        elif isinstance(event, DoneEvent):
            request.state.completion_tokens = event.completion_tokens
            yield chunk({}, FINISH[event.stop_reason])
            if include_usage:
                yield {"data": msgspec.json.encode({**head, "object": "chat.completion.chunk", "choices": [],
                                                    "usage": usage(event)}).decode()}
    yield {"data": "[DONE]"}


async def models(request: Request) -> Response:
    scheduler = scheduler_of(request)
    model = {"id": scheduler.engine.model, "object": "model", "created": 0, "owned_by": "snake_llama"}
    return JSONResponse({"object": "list", "data": [model]})
