"""Our own front door: `POST /api/converse` (SSE) and `GET /health`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from client.protocol import CONVERSE, DoneEvent
from server.chat import scheduler_of, start_chat
from server.errors import ApiError
from server.scheduler import Scheduler
from server.settings import Settings

T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over `limit` (declared or sent)."""
    too_large = ApiError(413, "request_too_large", f"the body is over the {limit}-byte limit")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def decode_body(body: bytes, type: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type, strict=True)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from exc


async def converse(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    scheduler = scheduler_of(request)
    body = decode_body(await read_body(request, settings.max_body_bytes), CONVERSE.request)
    job = await start_chat(scheduler, settings, body.conversation.messages, body.params)

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event in scheduler.events(job):
            if isinstance(event, DoneEvent):
                request.state.completion_tokens = event.completion_tokens
            name, data = CONVERSE.encode_event(event)
            yield {"event": name, "data": data}

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


async def health(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    scheduler: Scheduler | None = request.app.state.scheduler
    if scheduler is None:
        loading = {"status": "loading", "engine": settings.engine, "model": None, "model_path": settings.model_path}
        return JSONResponse(loading, 503, headers={"Retry-After": "1"})
    engine = scheduler.engine
    body: dict[str, object] = {
        "status": "ok", "engine": engine.name, "model": engine.model, "model_path": settings.model_path,
        "template": {"name": engine.template.name, "source": engine.template.source},
        "n_ctx": engine.n_ctx, "parallel": engine.parallel,
    }
    return JSONResponse(body)
