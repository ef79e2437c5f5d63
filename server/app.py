"""The Starlette app: routes, middleware, static files, and the shared model's scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route

from client.protocol import CONVERSE
from server import api, openai_api
from server.accesslog import AccessLog
from server.devreload import reload_route
from server.engines.base import ModelLoadError
from server.engines.loader import EngineLoader
from server.errors import ApiError, log, on_api_error, on_hang_up, on_http_error, on_unexpected
from server.metrics import Metrics
from server.scheduler import Scheduler
from server.security import ApiKeyGuard, SecurityHeaders
from server.settings import Settings
from server.static import CachedStatic

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
STATIC = ROOT / "static"
STYLE = ROOT / "style"


async def index(request: Request) -> Response:
    if not request.app.state.settings.dev:
        return FileResponse(CLIENT / "index.html", headers={"Cache-Control": "no-cache"})
    # Dev mode: the page finds the reload stream through this attribute (client/devreload.py).
    html = (CLIENT / "index.html").read_text().replace("<html ", '<html data-dev-reload="/dev/reload" ', 1)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def create_app(
    settings: Settings, load_engine: EngineLoader, on_load_error: Callable[[ModelLoadError], None]
) -> Starlette:
    """The app; the model loads in the background while `/health` and the API answer 503."""
    metrics = Metrics()

    async def load(app: Starlette) -> None:
        try:
            engine = await asyncio.to_thread(load_engine)
        except ModelLoadError as exc:
            on_load_error(exc)
            return
        app.state.scheduler = Scheduler(engine, settings.queue_size, on_done=metrics.observe_done)
        log.info("%s loaded %s", engine.name, engine.model)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.scheduler = None
        loading = asyncio.create_task(load(app))
        yield
        loading.cancel()
        if app.state.scheduler is not None:
            app.state.scheduler.close()

    routes = [
        Route("/", index),
        Route("/health", api.health),
        Route("/metrics", metrics.endpoint),
        Route(CONVERSE.path, api.converse, methods=["POST"]),
        Route("/v1/models", openai_api.models),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Mount("/client", CachedStatic(directory=CLIENT, max_age=0), name="client"),
        Mount("/style", CachedStatic(directory=STYLE, max_age=0, check_dir=False), name="style"),
        Mount("/static", CachedStatic(directory=STATIC, max_age=86400, check_dir=False), name="static"),
    ]
    if settings.dev:
        routes.append(Route("/dev/reload", reload_route([CLIENT, STYLE / "output.css"])))
    middleware = [Middleware(AccessLog, metrics=metrics), Middleware(SecurityHeaders)]
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        middleware.append(
            Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"])
        )
    middleware.append(Middleware(ApiKeyGuard, api_key=settings.api_key))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error, HTTPException: on_http_error, ClientDisconnect: on_hang_up, Exception: on_unexpected
        },
    )
    app.state.settings = settings
    return app
