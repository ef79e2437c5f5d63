"""OpenAI's legacy text completions: `POST /v1/completions`, a raw continuation of a prompt.

No chat template goes around the prompt, and control-token text in it stays text (a prompt
cannot forge a turn); the answer takes the same queue, stops and limits as a chat's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.bodies import body_of, client_of
from server.chat import ChatService, Completion
from server.errors import ApiError, openai_error
from server.events import Done, Event, Failed, Text
from server.openai_api import FINISH, Sampled, usage, whole_unless_hung_up
from wire.routes import Route
from wire.types import SamplingParams


# Unknown fields are allowed, as on the chat route: OpenAI clients send many we can ignore.
class CompletionRequest(Sampled):
    prompt: str | Annotated[list[str | int | list[int]], Meta(min_length=1)]  # one text, texts, or token ids
    best_of: int | None = None
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None

    def text(self) -> str:
        """The one prompt, as text; what this server cannot do with it is a 400 that names it."""
        refusals = {
            "n": self.n not in (None, 1),
            "best_of": self.best_of not in (None, 1),
            "echo": self.echo,
            "logprobs": self.logprobs is not None,
            "suffix": bool(self.suffix),
        }
        for name, refused in refusals.items():
            if refused:
                message = f"{name} is not supported: this server gives one plain continuation"
                raise ApiError(400, "unsupported_parameter", message)
        if isinstance(self.prompt, str):
            return self.prompt
        if all(isinstance(p, str) for p in self.prompt):
            if len(self.prompt) > 1:
                raise ApiError(400, "unsupported_parameter", "prompt: one prompt per request (send a string)")
            return str(self.prompt[0])
        # another model's token ids (tiktoken's, as some clients send) mean nothing to this one
        raise ApiError(400, "unsupported_parameter", "prompt: token ids are not supported; send the text")

    def params(self) -> SamplingParams:
        return SamplingParams(
            max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed
        )


COMPLETIONS: Route[CompletionRequest, Any] = Route("POST", "/v1/completions", CompletionRequest)


async def completions(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, COMPLETIONS)
    text = body.text()
    completion = await chats.complete_text(body.model, text, body.params(), body.stops, client_of(request))
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": completion.engine.model}
    if body.stream:
        stream = chunks(head, completion.events, body.include_usage, request)
        return EventSourceResponse(completion.streaming(stream), ping=15)
    return await whole_unless_hung_up(request, completion, whole(head, completion, request))


def choice(text: str, finish: str | None) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


async def whole(head: dict[str, Any], completion: Completion, request: Request) -> Response:
    answer = await completion.gather()
    done = answer.end
    if isinstance(done, Failed):
        return JSONResponse(openai_error(500, done.type, done.message), 500)
    request.state.completion_tokens = done.completion_tokens
    return JSONResponse({**head, "choices": [choice(answer.text, FINISH[done.stop_reason])], "usage": usage(done)})


async def chunks(
    head: dict[str, Any], events: AsyncIterator[Event], include_usage: bool, request: Request
) -> AsyncIterator[dict[str, str]]:
    def data(body: dict[str, Any]) -> dict[str, str]:
        return {"data": msgspec.json.encode(body).decode()}

    async for event in events:
        if isinstance(event, Text):
            yield data({**head, "choices": [choice(event.text, None)]})
        elif isinstance(event, Failed):
            yield data(openai_error(500, event.type, event.message))
        elif isinstance(event, Done):
            request.state.completion_tokens = event.completion_tokens
            yield data({**head, "choices": [choice("", FINISH[event.stop_reason])]})
            if include_usage:
                yield data({**head, "choices": [], "usage": usage(event)})
    yield {"data": "[DONE]"}


ROUTES = ((COMPLETIONS, completions),)
