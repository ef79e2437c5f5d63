"""OpenAI's Responses API: `POST /v1/responses` (streamed and not), the parts that map onto a chat.

`input` (a string, or items: messages, function calls and their outputs, reasoning) and
`instructions` become the chat that `/v1/chat/completions` would take, and go down the same
path; so do function tools, `tool_choice` and `text.format`. This server keeps no responses, so
what needs them (`previous_response_id`, `conversation`, `background`...) is refused by name, as
is every field it does not know: the request is decoded strictly.
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

from server.bodies import body_of
from server.chat import ChatService, Completion
from server.errors import ApiError, openai_error
from server.events import Done, Failed, Text, Thought, ToolCall
from server.openai_api import (
    ChatCompletionRequest,
    ChatMessage,
    JsonSchema,
    ResponseFormat,
    start,
    whole_unless_hung_up,
)
from wire.routes import Route
from wire.types import MAX_MESSAGES, MAX_TOOLS, MaxTokens, Temperature, TopP

NO_FILES = "this server reads no images or files yet"


class Part(Struct):
    """A piece of an item's content: input_text, output_text (an earlier answer), reasoning_text..."""

    type: str
    text: str = ""


class Item(Struct, kw_only=True):
    """One input item; items copied from an earlier response's output carry more fields, which
    are left alone."""

    type: Literal["message", "function_call", "function_call_output", "reasoning"] = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[Part] | None = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    output: str | list[Part] = ""

    def text(self, where: str) -> str:
        """The item's text (its content, or a call's output); files and images are refused."""
        content = self.output if self.type == "function_call_output" else self.content
        if content is None or isinstance(content, str):
            return content or ""
        for j, part in enumerate(content):
            if part.type in ("input_image", "input_file", "input_audio"):
                raise ApiError(400, "unsupported_parameter", f"{where}.content[{j}]: {part.type}: {NO_FILES}")
        return "".join(p.text for p in content)


class TextFormat(Struct):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str = ""
    schema: dict[str, Any] = msgspec.field(default_factory=dict)
    strict: bool | None = None
    description: str | None = None


class TextConfig(Struct):
    format: TextFormat = msgspec.field(default_factory=TextFormat)
    verbosity: str | None = None  # a hint to OpenAI's models; a local model's length is its own


class Reasoning(Struct):
    effort: str | None = None  # how hard OpenAI's models think: a local model's template decides
    summary: str | None = None


class ResponsesRequest(Struct, forbid_unknown_fields=True):
    input: str | Annotated[list[Item], Meta(max_length=MAX_MESSAGES)]
    model: str | None = None
    instructions: str | None = None
    max_output_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool = False
    tools: Annotated[list[dict[str, Any]], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    store: bool | None = None  # nothing is kept either way: the response says store false
    metadata: dict[str, str] | None = None  # given back in the response, as OpenAI does
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None  # the prompt cache is llama.cpp's own, by prefix
    truncation: Literal["auto", "disabled"] | None = None
    stream_options: dict[str, Any] | None = None
    include: list[str] | None = None

    def chat_request(self) -> ChatCompletionRequest:
        """The chat completion this request amounts to."""
        if self.include:
            message = f"include: {self.include[0]} is not something this server keeps"
            raise ApiError(400, "unsupported_parameter", message)
        messages = [ChatMessage("system", self.instructions)] if self.instructions else []
        if isinstance(self.input, str):
            messages.append(ChatMessage("user", self.input))
        else:
            messages += chat_messages(self.input)
        return ChatCompletionRequest(
            messages, model=self.model, max_tokens=self.max_output_tokens, temperature=self.temperature,
            top_p=self.top_p, response_format=self.response_format(), tools=self.chat_tools(),
            tool_choice=self.chat_tool_choice(), parallel_tool_calls=self.parallel_tool_calls,
        )

    def response_format(self) -> ResponseFormat | None:
        if self.text is None or self.text.format.type == "text":
            return None
        form = self.text.format
        return ResponseFormat(form.type, JsonSchema(form.name, form.schema, form.strict) if form.schema else None)

    def chat_tools(self) -> list[dict[str, Any]] | None:
        """Function tools in the chat API's shape; OpenAI's own tools (web search...) are refused."""
        if self.tools is None:
            return None
        tools = []
        for i, tool in enumerate(self.tools):
            if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
                kind = tool.get("type") or "a tool without a type"
                raise ApiError(400, "unsupported_parameter", f"tools[{i}]: {kind}: only function tools run here")
            function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
            tools.append({"type": "function", "function": function})
        return tools

    def chat_tool_choice(self) -> str | dict[str, Any] | None:
        choice = self.tool_choice
        if isinstance(choice, dict):
            if choice.get("type") != "function" or not isinstance(choice.get("name"), str):
                raise ApiError(400, "unsupported_parameter", "tool_choice: only a function tool can be chosen by name")
            return {"type": "function", "function": {"name": choice["name"]}}
        return choice

    def echoed(self) -> dict[str, Any]:
        """What the response object repeats of the request."""
        form = self.text.format if self.text else TextFormat()
        return {
            "instructions": self.instructions, "max_output_tokens": self.max_output_tokens,
            "temperature": self.temperature, "top_p": self.top_p, "tools": self.tools or [],
            "tool_choice": self.tool_choice or "auto", "parallel_tool_calls": self.parallel_tool_calls is not False,
            "metadata": self.metadata or {}, "text": {"format": msgspec.to_builtins(form)},
            "truncation": self.truncation or "disabled", "store": False, "background": False,
            "reasoning": {"effort": None, "summary": None},
        }


def chat_messages(items: list[Item]) -> list[ChatMessage]:
    """Input items as chat messages: an assistant's function calls join its message's tool_calls,
    each output becomes a tool message, and reasoning goes with the assistant message after it."""
    messages: list[ChatMessage] = []
    thoughts = ""
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if item.type == "reasoning":
            thoughts += item.text(where)
        elif item.type == "function_call":
            function = {"name": item.name, "arguments": item.arguments}
            call = {"id": item.call_id, "type": "function", "function": function}
            if not messages or messages[-1].role != "assistant":
                messages.append(ChatMessage("assistant", None, reasoning_content=thoughts or None))
                thoughts = ""
            messages[-1].tool_calls = [*(messages[-1].tool_calls or []), call]
        elif item.type == "function_call_output":
            messages.append(ChatMessage("tool", item.text(where), tool_call_id=item.call_id))
        elif item.role is None:
            raise ApiError(400, "invalid_request", f"{where}: a message needs a role")
        else:
            messages.append(ChatMessage(item.role, item.text(where)))
            if item.role == "assistant" and thoughts:
                messages[-1].reasoning_content, thoughts = thoughts, ""
    return messages


RESPONSES: Route[ResponsesRequest, Any] = Route("POST", "/v1/responses", ResponsesRequest)


async def responses(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, RESPONSES)
    completion = await start(chats, body.chat_request(), request)
    reply = Reply(completion.engine.model, body.echoed(), request)
    if body.stream:
        return EventSourceResponse(completion.streaming(Stream(reply).events(completion)), ping=15)
    return await whole_unless_hung_up(request, completion, whole(reply, completion))


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    done = status == "completed"
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if done else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def reasoning_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "reasoning_text", "text": text}] if status == "completed" else []
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content, "status": status}


def call_item(item_id: str, call: dict[str, Any], status: str) -> dict[str, Any]:
    function = call["function"]
    return {"id": item_id, "type": "function_call", "call_id": call.get("id") or new_id("call"),
            "name": function["name"], "arguments": function.get("arguments") or "{}", "status": status}


class Reply:
    """The response object, as each event and the whole answer show it."""

    def __init__(self, model: str, echoed: dict[str, Any], request: Request) -> None:
        self.head = {"id": new_id("resp"), "object": "response", "created_at": int(time.time()), "model": model}
        self.echoed = echoed
        self.request = request

    def snapshot(self, status: str, output: list[dict[str, Any]], done: Done | None = None,
                 error: Failed | None = None, called: bool = False) -> dict[str, Any]:
        incomplete = done is not None and done.stop_reason == "length" and not called
        body: dict[str, Any] = {
            **self.head, "status": "incomplete" if incomplete else status, "output": output,
            "error": {"code": error.type, "message": error.message} if error else None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "usage": None, **self.echoed,
        }
        if done is not None:
            self.request.state.completion_tokens = done.completion_tokens
            cached = done.prompt_tokens - done.prompt_tokens_evaluated if done.prompt_tokens_evaluated else 0
            body["usage"] = {
                "input_tokens": done.prompt_tokens, "input_tokens_details": {"cached_tokens": max(cached, 0)},
                "output_tokens": done.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": done.prompt_tokens + done.completion_tokens,
            }
        return body


async def whole(reply: Reply, completion: Completion) -> Response:
    answer = await completion.gather()
    done = answer.end
    output: list[dict[str, Any]] = []
    if answer.thoughts:
        output.append(reasoning_item(new_id("rs"), answer.thoughts, "completed"))
    if answer.text or not answer.calls:
        output.append(message_item(new_id("msg"), answer.text, "completed"))
    output += [call_item(new_id("fc"), call, "completed") for call in answer.calls]
    if isinstance(done, Failed):
        return JSONResponse(openai_error(500, done.type, done.message), 500)
    return JSONResponse(reply.snapshot("completed", output, done, called=bool(answer.calls)))


class Stream:
    """The stream's events: the response created, each output item added, filled and done (one
    open at a time), then the response completed, incomplete or failed."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the item being written, as added
        self.text = ""

    def event(self, kind: str, **data: Any) -> dict[str, str]:
        self.sequence += 1
        body = {"type": kind, "sequence_number": self.sequence - 1, **data}
        return {"event": kind, "data": msgspec.json.encode(body).decode()}

    async def events(self, completion: Completion) -> AsyncIterator[dict[str, str]]:
        yield self.event("response.created", response=self.reply.snapshot("in_progress", []))
        yield self.event("response.in_progress", response=self.reply.snapshot("in_progress", []))
        called = False
        async for event in completion.events:
            if isinstance(event, Text | Thought):
                kind = "message" if isinstance(event, Text) else "reasoning"
                for e in self.start(kind):
                    yield e
                yield self.delta(event.text)
            elif isinstance(event, ToolCall):
                called = True
                for e in self.call(event.call):
                    yield e
            elif isinstance(event, Failed):
                for e in self.finish():
                    yield e
                yield self.event("error", code=event.type, message=event.message, param=None)
                yield self.event("response.failed", response=self.reply.snapshot("failed", self.output, error=event))
                return
            elif isinstance(event, Done):
                for e in self.finish():
                    yield e
                final = self.reply.snapshot("completed", self.output, event, called=called)
                yield self.event(f"response.{final['status']}", response=final)

    def where(self) -> dict[str, Any]:
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.output)}

    def start(self, kind: str) -> list[dict[str, str]]:
        """Open an item of `kind`, unless one is open already."""
        if self.open is not None and self.open["type"] == kind:
            return []
        events = self.finish()
        if kind == "message":
            self.open = message_item(new_id("msg"), "", "in_progress")
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            return [*events, self.event("response.output_item.added", output_index=len(self.output), item=self.open),
                    self.event("response.content_part.added", **self.where(), content_index=0, part=part)]
        self.open = reasoning_item(new_id("rs"), "", "in_progress")
        return [*events, self.event("response.output_item.added", output_index=len(self.output), item=self.open)]

    def delta(self, text: str) -> dict[str, str]:
        assert self.open is not None
        self.text += text
        kind = "output_text" if self.open["type"] == "message" else "reasoning_text"
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        return self.event(f"response.{kind}.delta", **self.where(), content_index=0, delta=text, **extra)

    def call(self, call: dict[str, Any]) -> list[dict[str, str]]:
        """A whole function call: added, its arguments in one piece, done."""
        events = self.finish()
        item = call_item(new_id("fc"), call, "completed")
        self.open = {**item, "arguments": "", "status": "in_progress"}
        arguments = item["arguments"]
        events += [
            self.event("response.output_item.added", output_index=len(self.output), item=self.open),
            self.event("response.function_call_arguments.delta", **self.where(), delta=arguments),
            self.event("response.function_call_arguments.done", **self.where(), name=item["name"], arguments=arguments),
            self.event("response.output_item.done", output_index=len(self.output), item=item),
        ]
        self.output.append(item)
        self.open = None
        return events

    def finish(self) -> list[dict[str, str]]:
        """Close the open message or reasoning item."""
        if self.open is None:
            return []
        text, where = self.text, self.where()
        if self.open["type"] == "message":
            item = message_item(self.open["id"], text, "completed")
            part = item["content"][0]
            events = [self.event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                      self.event("response.content_part.done", **where, content_index=0, part=part)]
        else:
            item = reasoning_item(self.open["id"], text, "completed")
            events = [self.event("response.reasoning_text.done", **where, content_index=0, text=text)]
        events.append(self.event("response.output_item.done", output_index=len(self.output), item=item))
        self.output.append(item)
        self.open, self.text = None, ""
        return events


ROUTES = ((RESPONSES, responses),)
