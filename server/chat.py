"""Start an answer on the model a chat names: the one path both front doors (ours, OpenAI's) take."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from server.context import ContextTooLong, fit
from server.engines.base import ModelLoadError, Prompt, TemplateError, ToolEngine
from server.errors import ApiError
from server.models import Models, UnknownModel
from server.sampling import Sampling, resolve
from server.scheduler import Job, QueueFull, Scheduler
from server.settings import Settings
from wire.types import Message, SamplingParams


def models_of(request: Request) -> Models:
    """The models on offer, or 503 while the default model is still loading at startup."""
    if not request.app.state.ready:
        raise ApiError(503, "model_loading", "the model is still loading; retry in a moment", {"Retry-After": "1"})
    models: Models = request.app.state.models
    return models


def model_named(models: Models, name: str | None) -> str:
    """The model a request names (None: the default), or 404 in OpenAI's words."""
    try:
        return models.resolve(name)
    except UnknownModel as exc:
        raise ApiError(404, "model_not_found", str(exc)) from exc


async def loaded(models: Models, name: str) -> Scheduler:
    """The model's scheduler, loading it first if need be; a model that fails to load is the
    request's 400, naming the file and the cause."""
    try:
        return await models.load(name)
    except ModelLoadError as exc:
        raise ApiError(400, "model_load_failed", f"model {name} cannot be loaded: {exc}") from exc


async def start_chat(
    scheduler: Scheduler,
    settings: Settings,
    messages: Sequence[Message],
    params: SamplingParams,
    stops: tuple[str, ...] = (),
    json_schema: dict[str, Any] | None = None,
) -> Job:
    """Fit the chat into the context window and queue it; refuse with a 4xx/503 otherwise."""
    if not messages or not messages[-1].user:
        raise ApiError(400, "invalid_request", "the last message must be from the user")
    engine = scheduler.engine
    sampling = replace(resolve(params, settings.max_tokens), json_schema=json_schema)
    try:
        # rendering and tokenizing a long history takes a while: keep it off the event loop
        prompt, dropped = await asyncio.to_thread(
            fit, messages, params.system, engine.render, engine.n_ctx, sampling.max_tokens
        )
    except ContextTooLong as exc:
        raise ApiError(400, "context_length_exceeded", str(exc)) from exc
    except TemplateError as exc:
        raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
    return admit(scheduler, prompt, sampling, dropped, stops)


async def start_tool_chat(
    scheduler: Scheduler,
    settings: Settings,
    request: dict[str, Any],
    params: SamplingParams,
    json_schema: dict[str, Any] | None,
    stops: tuple[str, ...],
) -> Job:
    """An OpenAI request with tools, rendered by the engine as it stands: a chat with tools is
    not cut to fit (dropping turns could orphan a tool's answer), so it must fit whole."""
    engine = scheduler.engine
    if not isinstance(engine, ToolEngine):
        raise ApiError(400, "unsupported_parameter", "tools is not supported by this server's engine")
    sampling = replace(resolve(params, settings.max_tokens), json_schema=json_schema)
    try:
        prompt = await asyncio.to_thread(engine.render_chat, request)
    except TemplateError as exc:
        raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
    needed = prompt.n_tokens + sampling.max_tokens
    if needed > engine.n_ctx:
        raise ApiError(400, "context_length_exceeded", str(ContextTooLong(needed, engine.n_ctx)))
    return admit(scheduler, prompt, sampling, 0, stops)


def admit(scheduler: Scheduler, prompt: Prompt, sampling: Sampling, dropped: int, stops: tuple[str, ...]) -> Job:
    try:
        return scheduler.admit(prompt, sampling, dropped, stops)
    except QueueFull as exc:
        raise ApiError(503, "queue_full", f"{exc}; retry shortly", {"Retry-After": "5"}) from exc
