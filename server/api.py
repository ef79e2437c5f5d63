"""Our own front door: `POST /api/converse` (SSE), the answers it starts (`GET /api/answers/{id}`
to read one again, `POST /api/answers/{id}/stop`), `POST /api/tokens` and `GET /health`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from server.answers import AnswerLog
from server.bodies import body_of, client_of
from server.chat import ChatService
from server.errors import ApiError
from server.events import Done, Event, Failed, Loading, Progress, Queued, Text, Thought, ToolCall
from server.images import Located
from server.security import key_name
from wire.events import (
    AnswerEvent,
    DoneEvent,
    ErrorEvent,
    LoadingEvent,
    ProgressEvent,
    QueuedEvent,
    ThoughtEvent,
    TokenEvent,
    ToolCallEvent,
)
from wire.events import Event as WireEvent
from wire.routes import CONVERSE, TOKENS
from wire.types import Health, TemplateInfo, TokenCount


def chats_of(request: Request) -> ChatService:
    chats: ChatService = request.app.state.chats
    return chats


async def converse(request: Request) -> Response:
    """Start an answer and stream it; its first event names it (wire.events.AnswerEvent), so a
    page that goes away can read it again or stop it while the answer's grace period lasts."""
    body = await body_of(request, CONVERSE)
    chats, messages = chats_of(request), body.conversation.messages
    answer = await chats.converse(
        body.model, messages, body.params, client_of(request), body.tools, continues=body.continue_
    )
    return sse(request, answer)


def answer_named(request: Request) -> AnswerLog:
    answer = chats_of(request).answers.get(request.path_params["answer_id"])
    if answer is None:
        raise ApiError(404, "answer_not_found", "no such answer: it finished or was cancelled a while ago")
    return answer


async def read_answer(request: Request) -> Response:
    """An answer's events from the start, then as they come: what a reloaded page folds again."""
    return sse(request, answer_named(request))


async def stop_answer(request: Request) -> Response:
    """Cancel an answer now (its readers get `done` with stop reason "cancelled")."""
    answer_named(request).stop()
    return Response(status_code=204)


def wire_event(event: Event) -> WireEvent | None:
    """What our API sends for an event of the answer (None: nothing)."""
    match event:
        case ToolCall(call):
            function = call.get("function") or {}
            name, arguments = str(function.get("name", "")), str(function.get("arguments", ""))
            return ToolCallEvent(str(call.get("id", "")), name, arguments)
        case Text(text):
            return TokenEvent(text)
        case Thought(text):
            return ThoughtEvent(text)
        case Queued(position):
            return QueuedEvent(position)
        case Progress(processed, total, cached):
            return ProgressEvent(processed, total, cached)
        case Loading(model):
            return LoadingEvent(model)
        case Done():
            # the page's part of it: not which marker ended it, nor whose key asked
            fields = dataclasses.asdict(event)
            return DoneEvent(**{name: fields[name] for name in DoneEvent.__struct_fields__})
        case Failed(type, message):
            return ErrorEvent(type, message)
    return None


def sse(request: Request, answer: AnswerLog) -> Response:
    """The answer's events as our API streams them: its id first, then the log as it grows."""

    async def encoded() -> AsyncIterator[dict[str, str]]:
        events = chats_of(request).answers.read(answer)
        name, data = CONVERSE.encode_event(AnswerEvent(answer.id))
        yield {"event": name, "data": data}
        async for event in events:
            if isinstance(event, Done):
                request.state.completion_tokens = event.completion_tokens
            if (sent := wire_event(event)) is not None:
                name, data = CONVERSE.encode_event(sent)
                yield {"event": name, "data": data}

    return EventSourceResponse(encoded(), ping=15, headers={"Cache-Control": "no-store"})


async def count_tokens(request: Request) -> Response:
    """How many tokens a text (and its images) takes as a user's message to a model (loaded first
    if need be) under the request's system prompt, and the model's context: the page refuses an
    attachment that cannot fit before sending anything."""
    body = await body_of(request, TOKENS)
    chats = chats_of(request)
    engine = await chats.engine(body.model)
    await chats.check_images(engine, [Located(f"images[{i}]", url) for i, url in enumerate(body.images)])
    whole, empty = await chats.count(engine, body.text, body.system, body.images)
    name, budget = chats.model_named(body.model), chats.settings.max_tokens
    count = TokenCount(name, max(whole - empty, 0), empty, engine.n_ctx, budget)
    return Response(msgspec.json.encode(count), media_type="application/json")


async def list_models(request: Request) -> Response:
    chats = chats_of(request)
    chats.model_named(None)  # 503 while the default model loads
    return Response(msgspec.json.encode(await chats.models.listing()), media_type="application/json")


async def health(request: Request) -> Response:
    """200 once the default model is up; never waits for a model that is loading. With keys set,
    only the status unless the request has one (or OPEN_STATUS is on)."""
    chats = chats_of(request)
    settings, models, path = chats.settings, chats.models, chats.models.default_path
    keys = settings.keys
    if keys and not settings.open_status and key_name(request.headers, keys) is None:
        status = Health("ok") if chats.ready else Health("loading")
        headers = {} if chats.ready else {"Retry-After": "1"}
        return Response(msgspec.json.encode(status), 200 if chats.ready else 503, headers, "application/json")
    model_path = str(path) if path is not None else settings.model_path
    if not chats.ready:
        loading = Health("loading", engine=settings.engine, model_path=model_path)
        return Response(msgspec.json.encode(loading), 503, headers={"Retry-After": "1"}, media_type="application/json")
    body = Health("ok", model=models.default, model_path=model_path, models_loaded=models.loaded_names,
                  vision=bool(settings.mmproj))
    scheduler = models.loaded_default
    if scheduler is not None:
        engine = scheduler.engine
        template = TemplateInfo(engine.template.name, engine.template.source)
        body = msgspec.structs.replace(
            body, engine=engine.name, model=engine.model, template=template, n_ctx=engine.n_ctx,
            parallel=engine.parallel,
        )
    return Response(msgspec.json.encode(body), media_type="application/json")
