"""The Starlette app: routes, middleware, static files, and the shared model's scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as Endpoint

from server import (
    anthropic_api,
    api,
    heap,
    hub_api,
    models_api,
    ollama_api,
    openai_api,
    openai_completions,
    openai_embeddings,
    openai_responses,
    tools_api,
)
from server.accesslog import AccessLog
from server.answers import Answers
from server.chat import ChatService
from server.connections import AcceptErrors
from server.devreload import reload_route
from server.downloads import Downloads
from server.engines.base import Engine, ModelLoadError
from server.engines.loader import EngineLoader
from server.errors import (
    ApiError,
    ErrorShapes,
    anthropic_error,
    log,
    ollama_error,
    on_api_error,
    on_hang_up,
    on_http_error,
    on_unexpected,
)
from server.mcp_servers import McpServers, read_config
from server.metrics import Metrics
from server.models import Models, models_folder
from server.scheduler import ClientAnswers, Scheduler
from server.security import ApiKeyGuard, SecurityHeaders, SiteGuard
from server.settings import Settings
from server.static import CachedStatic, Page
from wire.routes import ANSWER, CONVERSE, HEALTH, MODELS, STOP_ANSWER, TOKENS, Route

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
WIRE = ROOT / "wire"
STATIC = ROOT / "static"
STYLE = ROOT / "style"


Handler = Callable[[Request], Awaitable[Response]]

# The route table: every route of the API once, with its handler. Registration, the paths the
# API key guards and the error shape of each path all come from it (metrics name the matched route).
API: tuple[tuple[Route[Any, Any], Handler], ...] = (
    (HEALTH, api.health),
    (CONVERSE, api.converse),
    (ANSWER, api.read_answer),
    (STOP_ANSWER, api.stop_answer),
    (MODELS, api.list_models),
    (TOKENS, api.count_tokens),
    *tools_api.ROUTES,
    *hub_api.ROUTES,
    *models_api.ROUTES,
    (openai_api.MODELS, openai_api.models),
    (openai_api.CHAT_COMPLETIONS, openai_api.chat_completions),
    *openai_completions.ROUTES,
    *openai_embeddings.ROUTES,
    *openai_responses.ROUTES,
    *ollama_api.ROUTES,
    *anthropic_api.ROUTES,
)
OPENAI = (openai_api.MODELS, openai_api.CHAT_COMPLETIONS)
# The front doors whose errors take their own shape on their paths (the rest of /v1/ is OpenAI's)
OWN_ERRORS = ((ollama_api.ROUTES, ollama_error), (anthropic_api.ROUTES, anthropic_error))


def prefixes(routes: Iterable[Route[Any, Any]]) -> tuple[str, ...]:
    """The first path segments of `routes`, as prefixes ("/api/"): what a guard or an error shape covers."""
    return tuple(sorted({"/" + route.path.strip("/").split("/")[0] + "/" for route in routes}))


async def index(request: Request) -> Response:
    # client/index.html with the build's asset URLs; in dev mode, with the reload stream's address
    page: Page = request.app.state.page
    return page.response(request.headers)


def create_app(
    settings: Settings, load_engine: EngineLoader, on_load_error: Callable[[ModelLoadError], None]
) -> Starlette:
    """The app; the model loads in the background while `/health` and the API answer 503."""
    metrics = Metrics()

    clients = ClientAnswers(settings.max_answers_per_client)  # shared: the cap is over every model

    def make_scheduler(engine: Engine) -> Scheduler:
        return Scheduler(engine, settings.queue_size, on_done=metrics.observe_done, clients=clients,
                         per_name=settings.key_parallel)

    models = Models(settings, load_engine, make_scheduler)
    mcp = McpServers(read_config(settings.mcp_config) if settings.mcp_config else {}, settings.tool_timeout_s)
    answers = Answers(settings.answer_grace_s)
    downloads = Downloads(models_folder(settings), settings.offline)
    chats = ChatService(settings, models, answers)

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
        heap.settle()  # what the run keeps is in now: no full garbage collection walks it again
        chats.ready = True

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        asyncio.get_running_loop().set_exception_handler(AcceptErrors())
        loading = asyncio.create_task(load(app))
        mcp.start()
        yield
        await mcp.stop()
        await downloads.close()
        loading.cancel()
        answers.close()
        models.close()

    routes: list[BaseRoute] = [
        Endpoint("/", index),
        Endpoint("/metrics", metrics.endpoint),
        *(Endpoint(route.path, handler, methods=[route.method]) for route, handler in API),
        Mount("/client", CachedStatic(directory=CLIENT, max_age=0), name="client"),
        Mount("/wire", CachedStatic(directory=WIRE, max_age=0), name="wire"),
        Mount("/style", CachedStatic(directory=STYLE, max_age=0, check_dir=False), name="style"),
        Mount("/static", CachedStatic(directory=STATIC, max_age=86400, check_dir=False), name="static"),
    ]
    if settings.dev:
        routes.append(Endpoint("/dev/reload", reload_route([CLIENT, WIRE, STYLE / "output.css"])))
    middleware = [Middleware(AccessLog, metrics=metrics), Middleware(SecurityHeaders)]
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        middleware.append(
            Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type", "x-api-key", "anthropic-version"])
        )
    shapes = ErrorShapes(prefixes(OPENAI), {route.path: shape for routes, shape in OWN_ERRORS for route, _ in routes})
    if not settings.keys:  # a key is what a page elsewhere cannot send; without one, check who asks
        middleware.append(Middleware(SiteGuard, host=settings.host, cors_origins=origins, shapes=shapes))
    guarded = prefixes(route for route, _ in API if route.guarded)
    if not settings.open_status:
        guarded += ("/metrics",)
    middleware.append(Middleware(ApiKeyGuard, keys=settings.keys, guarded=guarded, shapes=shapes))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error, HTTPException: on_http_error, ClientDisconnect: on_hang_up, Exception: on_unexpected
        },
    )
    app.state.settings = settings
    app.state.chats = chats
    app.state.mcp = mcp
    app.state.downloads = downloads
    app.state.error_shapes = shapes
    app.state.page = Page(ROOT, STATIC, dev=settings.dev, code_time_limit_s=settings.code_time_limit_s)
    return app
