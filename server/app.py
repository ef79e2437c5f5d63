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
from starlette.responses import Response
from starlette.routing import Mount, Route

from server import api, openai_api
from server.accesslog import AccessLog
from server.answers import Answers
from server.devreload import reload_route
from server.engines.base import Engine, ModelLoadError
from server.engines.loader import EngineLoader
from server.errors import ApiError, log, on_api_error, on_hang_up, on_http_error, on_unexpected
from server.metrics import Metrics
from server.models import Models
from server.scheduler import Scheduler
from server.security import ApiKeyGuard, SecurityHeaders
from server.settings import Settings
from server.static import CachedStatic, Page
from wire.routes import ANSWERS_PATH, CONVERSE, MODELS_PATH, TOKENS_PATH

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
WIRE = ROOT / "wire"
STATIC = ROOT / "static"
STYLE = ROOT / "style"


async def index(request: Request) -> Response:
    # client/index.html with the build's asset URLs; in dev mode, with the reload stream's address
    page: Page = request.app.state.page
    return page.response(request.headers)


def create_app(
    settings: Settings, load_engine: EngineLoader, on_load_error: Callable[[ModelLoadError], None]
) -> Starlette:
    """The app; the model loads in the background while `/health` and the API answer 503."""
    metrics = Metrics()

    def make_scheduler(engine: Engine) -> Scheduler:
        return Scheduler(engine, settings.queue_size, on_done=metrics.observe_done)

    models = Models(settings, load_engine, make_scheduler)
    answers = Answers(settings.answer_grace_s)

    async def load(app: Starlette) -> None:
        try:
            await models.load(models.default)
        except ModelLoadError as exc:
            on_load_error(exc)
            return
        except Exception as exc:  # a fault of ours, not the model file's: still one clear line
            log.exception("loading the model failed")
            on_load_error(ModelLoadError(f"loading the model failed unexpectedly ({type(exc).__name__}: {exc})"))
            return
        app.state.ready = True

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ready = False
        loading = asyncio.create_task(load(app))
        yield
        loading.cancel()
        answers.close()
        models.close()

    routes = [
        Route("/", index),
        Route("/health", api.health),
        Route("/metrics", metrics.endpoint),
        Route(CONVERSE.path, api.converse, methods=["POST"]),
        Route(ANSWERS_PATH + "/{answer_id}", api.read_answer),
        Route(ANSWERS_PATH + "/{answer_id}/stop", api.stop_answer, methods=["POST"]),
        Route(MODELS_PATH, api.list_models),
        Route(TOKENS_PATH, api.count_tokens, methods=["POST"]),
        Route("/v1/models", openai_api.models),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Mount("/client", CachedStatic(directory=CLIENT, max_age=0), name="client"),
        Mount("/wire", CachedStatic(directory=WIRE, max_age=0), name="wire"),
        Mount("/style", CachedStatic(directory=STYLE, max_age=0, check_dir=False), name="style"),
        Mount("/static", CachedStatic(directory=STATIC, max_age=86400, check_dir=False), name="static"),
    ]
    if settings.dev:
        routes.append(Route("/dev/reload", reload_route([CLIENT, WIRE, STYLE / "output.css"])))
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
    app.state.models = models
    app.state.answers = answers
    app.state.page = Page(ROOT, STATIC, dev=settings.dev)
    return app
