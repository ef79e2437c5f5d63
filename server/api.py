"""Our own front door: `POST /api/converse` (SSE), the answers it starts (`GET /api/answers/{id}`
to read one again, `POST /api/answers/{id}/stop`), `POST /api/tokens` and `GET /health`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.answers import Answer, Answers
from server.chat import loaded, model_named, models_of, start_chat
from server.engines.base import Engine, EngineError, TemplateError
from server.errors import ApiError
from server.models import Models
from server.settings import Settings
from wire.events import DoneEvent, ErrorEvent, Event, LoadingEvent
from wire.routes import CONVERSE
from wire.types import Message, TokenCount, TokensRequest

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
    """Start an answer and stream it; its first event names it (wire.events.AnswerEvent), so a
    page that goes away can read it again or stop it while the answer's grace period lasts."""
    settings: Settings = request.app.state.settings
    answers: Answers = request.app.state.answers
    models = models_of(request)
    body = decode_body(await read_body(request, settings.max_body_bytes), CONVERSE.request)
    name = model_named(models, body.model)
    scheduler = models.loaded(name)
    if scheduler is not None:  # the usual case: refusals are plain HTTP errors
        job = await start_chat(scheduler, settings, body.conversation.messages, body.params)
        answer = answers.start(lambda answer: answer.follow(scheduler, job))
        return sse(relay(request, answers, answer))

    async def load_then_answer(answer: Answer) -> AsyncIterator[Event]:
        """The model loads first, so the stream starts at once and says so; what would have been
        an HTTP error is an error event now."""
        answer.model = name
        yield LoadingEvent(name)
        try:
            ready = await loaded(models, name)
            job = await start_chat(ready, settings, body.conversation.messages, body.params)
        except ApiError as exc:
            yield ErrorEvent(exc.type, exc.message)
            return
        async for event in answer.follow(ready, job):
            yield event

    return sse(relay(request, answers, answers.start(load_then_answer)))


def answer_named(request: Request) -> Answer:
    answer = request.app.state.answers.get(request.path_params["answer_id"])
    if answer is None:
        raise ApiError(404, "answer_not_found", "no such answer: it finished or was cancelled a while ago")
    assert isinstance(answer, Answer)
    return answer


async def read_answer(request: Request) -> Response:
    """An answer's events from the start, then as they come: what a reloaded page folds again."""
    return sse(relay(request, request.app.state.answers, answer_named(request)))


async def stop_answer(request: Request) -> Response:
    """Cancel an answer now (its readers get `done` with stop reason "cancelled")."""
    answer_named(request).stop()
    return Response(status_code=204)


async def relay(request: Request, answers: Answers, answer: Answer) -> AsyncIterator[Event]:
    async for event in answers.read(answer):
        if isinstance(event, DoneEvent):
            request.state.completion_tokens = event.completion_tokens
        yield event


def sse(events: AsyncIterator[Event]) -> Response:
    async def encoded() -> AsyncIterator[dict[str, str]]:
        async for event in events:
            name, data = CONVERSE.encode_event(event)
            yield {"event": name, "data": data}

    return EventSourceResponse(encoded(), ping=15, headers={"Cache-Control": "no-store"})


async def count_tokens(request: Request) -> Response:
    """How many tokens a text takes as a user's message to a model (loaded first if need be) under
    the request's system prompt, and the model's context: the page refuses an attachment that
    cannot fit before sending anything."""
    settings: Settings = request.app.state.settings
    models = models_of(request)
    body = decode_body(await read_body(request, settings.max_body_bytes), TokensRequest)
    name = model_named(models, body.model)
    engine = (models.loaded(name) or await loaded(models, name)).engine
    try:
        # tokenizing a long text takes a while: keep it off the event loop
        whole, empty = await asyncio.to_thread(_message_tokens, engine, body.text, body.system)
    except TemplateError as exc:
        raise ApiError(400, "invalid_request", f"the model's chat template refused the text: {exc}") from exc
    except EngineError as exc:  # the engine failed, not the request: worth a retry, never a 500
        raise ApiError(503, "engine_error", f"the model could not count the text: {exc}") from exc
    count = TokenCount(name, max(whole - empty, 0), empty, engine.n_ctx, settings.max_tokens)
    return Response(msgspec.json.encode(count), media_type="application/json")


def _message_tokens(engine: Engine, text: str, system: str | None) -> tuple[int, int]:
    """The prompt's tokens with `text` as the one user message, and with an empty one (the
    template's and the system prompt's share)."""

    def count(message: str) -> int:
        return engine.render([Message(user=True, text=message)], system).n_tokens

    return count(text), count("")


async def list_models(request: Request) -> Response:
    return Response(msgspec.json.encode(models_of(request).listing()), media_type="application/json")


async def health(request: Request) -> Response:
    """200 once the default model is up; never waits for a model that is loading."""
    settings: Settings = request.app.state.settings
    models: Models = request.app.state.models
    if not request.app.state.ready:
        loading = {"status": "loading", "engine": settings.engine, "model": None, "model_path": settings.model_path}
        return JSONResponse(loading, 503, headers={"Retry-After": "1"})
    body: dict[str, object] = {"status": "ok", "model": models.default, "model_path": settings.model_path}
    scheduler = models.loaded_default
    if scheduler is not None:
        engine = scheduler.engine
        body |= {
            "engine": engine.name, "model": engine.model,
            "template": {"name": engine.template.name, "source": engine.template.source},
            "n_ctx": engine.n_ctx, "parallel": engine.parallel,
        }
    body["models_loaded"] = models.loaded_names
    return JSONResponse(body)
