"""The Starlette app: routes, static files, and the shared model's scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from client.protocol import CONVERSE, ConverseRequest
from server.context import ContextTooLong, fit
from server.devreload import reload_route
from server.engines.base import Engine
from server.errors import ApiError, on_api_error, on_http_error, on_unexpected
from server.scheduler import QueueFull, Scheduler
from server.settings import Settings
from server.static import CachedStatic

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
STATIC = ROOT / "static"
STYLE = ROOT / "style"


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "request_too_large", f"the body is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "request_too_large", f"the body is over the {limit}-byte limit")
    return bytes(body)


def decode_converse(body: bytes) -> ConverseRequest:
    try:
        request: ConverseRequest = CONVERSE.decode_request(body)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from exc
    if not request.conversation.messages[-1].user:
        raise ApiError(400, "invalid_request", "the last message must be from the user")
    return request


async def converse(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    scheduler: Scheduler = request.app.state.scheduler
    engine = scheduler.engine
    body = decode_converse(await read_body(request, settings.max_body_bytes))
    budget = body.params.max_tokens or settings.max_tokens
    try:
        prompt, dropped = await asyncio.to_thread(
            fit, body.conversation.messages, body.params.system, engine.count_tokens, engine.n_ctx, budget
        )
    except ContextTooLong as exc:
        raise ApiError(400, "context_length_exceeded", str(exc)) from exc
    try:
        job = scheduler.admit(prompt, body.params, dropped)
    except QueueFull as exc:
        raise ApiError(503, "queue_full", f"{exc}; retry shortly", {"Retry-After": "5"}) from exc

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event in scheduler.events(job):
            name, data = CONVERSE.encode_event(event)
            yield {"event": name, "data": data}

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


async def health(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.scheduler.engine
    return JSONResponse(
        {"status": "ok", "engine": engine.name, "model": engine.model, "model_path": settings.model_path}
    )


async def index(request: Request) -> Response:
    if not request.app.state.settings.dev:
        return FileResponse(CLIENT / "index.html", headers={"Cache-Control": "no-cache"})
    # Dev mode: the page finds the reload stream through this attribute (client/devreload.py).
    html = (CLIENT / "index.html").read_text().replace("<html ", '<html data-dev-reload="/dev/reload" ', 1)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def create_app(settings: Settings, engine: Engine) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.scheduler = Scheduler(engine, settings.queue_size)
        yield
        app.state.scheduler.close()

    routes = [
        Route("/", index),
        Route("/health", health),
        Route(CONVERSE.path, converse, methods=["POST"]),
        Mount("/client", CachedStatic(directory=CLIENT, max_age=0), name="client"),
        Mount("/style", CachedStatic(directory=STYLE, max_age=0, check_dir=False), name="style"),
        Mount("/static", CachedStatic(directory=STATIC, max_age=86400, check_dir=False), name="static"),
    ]
    if settings.dev:
        routes.append(Route("/dev/reload", reload_route([CLIENT, STYLE / "output.css"])))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_unexpected},
    )
    app.state.settings = settings
    return app
