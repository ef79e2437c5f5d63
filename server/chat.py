"""The chat service: the one path every front door takes down to the model.

It names the model a request asks for (loading it if need be), resolves the sampling, fits the
chat into the context window and admits it to the model's scheduler, or refuses it with an
`ApiError` before any response starts. Our API's answers then go to the answer log (read again
by id); the OpenAI front door reads the scheduler's events itself.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from server.answers import Admitted, AnswerLog, Answers
from server.context import ContextTooLong, fit
from server.engines.base import (
    ContinuingEngine,
    Engine,
    EngineError,
    ModelLoadError,
    Prompt,
    TemplateError,
    TextEngine,
    ToolEngine,
    VisionEngine,
)
from server.engines.embedder import InputTooLong, LlamaCppEmbedder
from server.errors import ApiError
from server.events import Done, Event, Failed, Text, Thought, ToolCall
from server.images import ImageError, Located, base64_of
from server.models import Models, UnknownModel
from server.remotes import RemoteUnavailable
from server.sampling import Sampling, resolve
from server.scheduler import Caller, ClientBusy, Job, QueueFull, Reservation, Scheduler
from server.settings import Settings
from server.token_counts import TokenCounts
from server.tool_chat import has_tools, tool_request
from wire.types import Message, SamplingParams, ToolSpec

T = TypeVar("T")


@dataclass(frozen=True)
class Gathered:
    """A whole answer, as the front doors that do not stream put it in one response."""

    text: str
    thoughts: str
    calls: list[dict[str, Any]]  # OpenAI-shaped tool calls, as the engine gives them
    end: Done | Failed


@dataclass(frozen=True)
class Completion:
    """An answer its front door reads itself. `cancel` ends it however far it got: a client that
    hangs up before the first event (while its prompt is read) has not begun `events`, so
    leaving them would not."""

    engine: Engine
    events: AsyncIterator[Event]
    cancel: Callable[[], None]
    prompt_tokens: int = 0  # the prompt's, known before the first event (Anthropic's stream opens with it)

    async def streaming(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """`stream` (what a front door makes of the events), the answer cancelled when it ends
        however it ends: a client that hangs up, maybe while its prompt is still read, included."""
        try:
            async for item in stream:
                yield item
        finally:
            self.cancel()

    async def gather(self) -> Gathered:
        """Read the whole answer: its text, thoughts and tool calls, and how it ended."""
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        async for event in self.events:
            if isinstance(event, Text):
                text.append(event.text)
            elif isinstance(event, Thought):
                thoughts.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append(event.call)
            elif isinstance(event, Done | Failed):
                return Gathered("".join(text), "".join(thoughts), calls, event)
        raise RuntimeError("the answer ended without a done event")  # pragma: no cover - the scheduler sends one


class ChatService:
    def __init__(self, settings: Settings, models: Models, answers: Answers) -> None:
        self.settings = settings
        self.models = models
        self.answers = answers
        self.ready = False  # the default model has loaded: until then every request is a 503
        # each loaded model's turn counts, which go with it when it is unloaded
        self._counts: weakref.WeakKeyDictionary[Scheduler, TokenCounts] = weakref.WeakKeyDictionary()

    # -- the front doors' calls ---------------------------------------------------------------

    async def converse(
        self,
        model: str | None,
        messages: Sequence[Message],
        params: SamplingParams,
        client: Caller | None = None,
        tools: Sequence[ToolSpec] = (),
        continues: bool = False,
    ) -> AnswerLog:
        """Start an answer in the answer log. With its model loaded, a refusal is the request's
        error; otherwise the answer starts at once with `Loading`, and a refusal is its `Failed`.
        `client`: who asks (its address and the name of its key); `tools`: what the model may call
        (server.tool_chat); `continues`: the last message is the model's answer so far, to go on with."""
        name = self.model_named(model)
        if continues:
            check_continuation(messages, tools)
        try:
            await self.check_remote(name)
        except ApiError as exc:
            if exc.type != "remote_unavailable":
                raise
            return self.answers.start(name, Failed(exc.type, exc.message))
        admit = partial(self._admit_conversation, client=client, messages=messages, params=params, tools=tools,
                        continues=continues)
        scheduler = self.models.touch(name)
        if scheduler is not None:
            return self.answers.start(name, await admit(scheduler))
        return self.answers.start(name, self._load_then_admit(name, admit))

    async def complete(
        self,
        model: str | None,
        messages: Sequence[Message],
        params: SamplingParams,
        stops: tuple[str, ...] = (),
        json_schema: dict[str, Any] | None = None,
        tools: dict[str, Any] | None = None,
        client: Caller | None = None,
        window: int | None = None,
    ) -> Completion:
        """An answer read straight from the scheduler, its model loaded first (OpenAI clients know
        no loading event); `tools`: an OpenAI chat request with tools, which the engine renders;
        `window`: a context window smaller than the model's to fit the chat into."""
        scheduler = await self.load(self.model_named(model))
        if tools is not None:
            _, job = await self._admit_tool_chat(scheduler, client, tools, params, json_schema, stops)
        else:
            _, job = await self._admit_chat(scheduler, client, messages, params, stops, json_schema, window)
        return completion_of(scheduler, job)

    async def complete_text(
        self,
        model: str | None,
        text: str,
        params: SamplingParams,
        stops: tuple[str, ...] = (),
        client: Caller | None = None,
    ) -> Completion:
        """A raw continuation of `text` (no chat template), read straight from the scheduler; the
        text must fit the context window whole, with the answer's budget."""
        scheduler = await self.load(self.model_named(model))
        engine = scheduler.engine
        if not isinstance(engine, TextEngine):
            raise ApiError(400, "unsupported_parameter", "text completion is not supported by this server's engine")
        render = partial(engine.render_text, text)
        _, job = await self._admit_whole(scheduler, client, render, params, None, stops)
        return completion_of(scheduler, job)

    async def embed(
        self, model: str | None, texts: Sequence[str], client: Caller | None = None
    ) -> tuple[str, list[list[float]], int]:
        """The model's name, a vector for each text and the tokens read, from the model's embedding
        instance (loaded first if need be), under a queue place of its own."""
        name = self.model_named(model)
        try:
            scheduler = await self.models.load(name, embeddings=True)
        except ModelLoadError as exc:
            raise ApiError(400, "model_load_failed", f"model {name} cannot give embeddings: {exc}") from exc
        embedder = scheduler.engine
        assert isinstance(embedder, LlamaCppEmbedder)
        with self._place(scheduler, client):
            try:
                vectors, tokens = await asyncio.to_thread(embedder.embed, texts)
            except InputTooLong as exc:
                raise ApiError(400, "context_length_exceeded", str(exc)) from exc
            except EngineError as exc:
                raise ApiError(503, "engine_error", f"the model could not embed the text: {exc}") from exc
        return embedder.model, vectors, tokens

    async def engine(self, model: str | None) -> Engine:
        """The engine of the model a request names, loaded first if need be."""
        return (await self.load(self.model_named(model))).engine

    async def check_images(self, engine: Engine, images: Sequence[Located]) -> None:
        """A 400 naming the first image the model cannot take, and why: not a base64 `data:`
        URL, a model without a vision projector, or bytes llama.cpp cannot decode as an image."""
        for image in images:
            try:
                base64_of(image.url)
                if not isinstance(engine, VisionEngine) or not engine.vision:
                    raise ImageError(f"model {engine.model} takes no images: no vision projector goes with it")
                await asyncio.to_thread(engine.image_tokens, image.url)  # decodes the image: off the event loop
            except ImageError as exc:
                raise ApiError(400, "invalid_image", f"{image.where}: {exc}") from exc
            except EngineError as exc:
                raise ApiError(503, "engine_error", f"the model could not read {image.where}: {exc}") from exc

    async def count(
        self, engine: Engine, text: str, system: str | None, images: Sequence[str] = ()
    ) -> tuple[int, int]:
        """The tokens of a prompt holding `text` and `images` as the one user message (counted on
        the path an answer's prompt takes), and of one holding an empty message (the template's
        and the system prompt's share). Check the images first (`check_images`)."""

        def count(message: str, pictures: Sequence[str] = ()) -> int:
            return engine.render([Message(user=True, text=message, images=list(pictures))], system).n_tokens

        try:
            # tokenizing a long text takes a while: keep it off the event loop
            return await asyncio.to_thread(count, text, images), await asyncio.to_thread(count, "")
        except TemplateError as exc:
            raise ApiError(400, "invalid_request", f"the model's chat template refused the text: {exc}") from exc
        except EngineError as exc:  # the engine failed, not the request: worth a retry, never a 500
            raise ApiError(503, "engine_error", f"the model could not count the text: {exc}") from exc

    async def count_chat(
        self, model: str | None, messages: Sequence[Message], system: str | None,
        tools: dict[str, Any] | None = None, client: Caller | None = None,
    ) -> int:
        """The prompt tokens of a whole chat as `complete` would render it (none dropped to fit),
        counted under a queue place: tokenizing a long history is the costly part of an answer."""
        scheduler = await self.load(self.model_named(model))
        engine = scheduler.engine
        if tools is not None and not isinstance(engine, ToolEngine):
            raise ApiError(400, "unsupported_parameter", "tools is not supported by this server's engine")

        def count() -> int:
            if tools is not None and isinstance(engine, ToolEngine):
                return engine.render_chat(tools).n_tokens
            return engine.render(messages, system).n_tokens

        with self._place(scheduler, client):
            try:
                return await asyncio.to_thread(count)
            except TemplateError as exc:
                raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
            except EngineError as exc:
                raise ApiError(503, "engine_error", f"the model could not read the chat: {exc}") from exc

    # -- the model ------------------------------------------------------------------------------

    def model_named(self, name: str | None) -> str:
        """The model a request names (None: the default), or 404 in OpenAI's words; 503 while
        the default model is still loading at startup."""
        if not self.ready:
            raise ApiError(503, "model_loading", "the model is still loading; retry in a moment", {"Retry-After": "1"})
        try:
            return self.models.resolve(name)
        except UnknownModel as exc:
            raise ApiError(404, "model_not_found", str(exc)) from exc

    async def load(self, name: str) -> Scheduler:
        """The model's scheduler, loading it first if need be; a model that fails to load is the
        request's 400, naming the file and the cause, and a remote's model whose server is down
        its 503."""
        await self.check_remote(name)
        try:
            return await self.models.load(name)
        except RemoteUnavailable as exc:  # it went away since it listed the model
            raise unavailable(name, exc) from exc
        except ModelLoadError as exc:
            raise ApiError(400, "model_load_failed", f"model {name} cannot be loaded: {exc}") from exc

    async def check_remote(self, name: str) -> None:
        """For a remote's model, its 503 while its server does not answer, or its 404 if the
        server does not list it; nothing for a local model."""
        try:
            await self.models.check_remote(name)
        except RemoteUnavailable as exc:
            raise unavailable(name, exc) from exc
        except UnknownModel as exc:
            raise ApiError(404, "model_not_found", str(exc)) from exc

    async def _load_then_admit(self, name: str, admit: Callable[[Scheduler], Awaitable[Admitted]]) -> Admitted | Failed:
        try:
            return await admit(await self.load(name))
        except ApiError as exc:
            return Failed(exc.type, exc.message)

    async def _admit_conversation(
        self,
        scheduler: Scheduler,
        client: Caller | None,
        messages: Sequence[Message],
        params: SamplingParams,
        tools: Sequence[ToolSpec],
        continues: bool = False,
    ) -> Admitted:
        """Our API's conversation, on the tool path where it offers tools or holds calls."""
        images = [Located(f"conversation.messages[{i}].images[{j}]", url)
                  for i, m in enumerate(messages) for j, url in enumerate(m.images)]
        await self.check_images(scheduler.engine, images)
        if continues:
            return await self._admit_continuation(scheduler, client, messages, params)
        if not has_tools(messages, tools):
            return await self._admit_chat(scheduler, client, messages, params)
        request = tool_request(messages, params.system, tools, self.settings.max_tool_rounds)
        return await self._admit_tool_chat(scheduler, client, request, params, None, ())

    # -- admission ------------------------------------------------------------------------------

    def _sampling(self, params: SamplingParams, json_schema: dict[str, Any] | None) -> Sampling:
        return replace(resolve(params, self.settings.max_tokens), json_schema=json_schema)

    async def _admit_chat(
        self,
        scheduler: Scheduler,
        client: Caller | None,
        messages: Sequence[Message],
        params: SamplingParams,
        stops: tuple[str, ...] = (),
        json_schema: dict[str, Any] | None = None,
        window: int | None = None,
    ) -> Admitted:
        """Take a queue place, fit the chat into the context window under it, and queue it;
        refuse with a 4xx/503 otherwise."""
        if not messages or not messages[-1].user:
            raise ApiError(400, "invalid_request", "the last message must be from the user")
        engine = scheduler.engine
        sampling = self._sampling(params, json_schema)
        count = partial(self._counts.setdefault(scheduler, TokenCounts()).count, engine.render)
        with self._place(scheduler, client) as place:
            try:
                # rendering and tokenizing a long history takes a while: keep it off the event loop
                n_ctx = min(window or engine.n_ctx, engine.n_ctx)
                prompt, dropped = await asyncio.to_thread(
                    fit, messages, params.system, engine.render, n_ctx, sampling.max_tokens, count
                )
            except ContextTooLong as exc:
                raise ApiError(400, "context_length_exceeded", str(exc)) from exc
            except TemplateError as exc:
                raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
            except EngineError as exc:  # the engine failed, not the request: worth a retry, never a 500
                raise ApiError(503, "engine_error", f"the model could not read the chat: {exc}") from exc
            return self._admit(place, prompt, sampling, dropped, stops)

    async def _admit_continuation(
        self, scheduler: Scheduler, client: Caller | None, messages: Sequence[Message], params: SamplingParams
    ) -> Admitted:
        """The chat up to the model's answer so far, rendered as for a new answer, and that answer's
        text after it: the model writes on from the answer's end, as llama.cpp's own server does
        with a chat that ends in the assistant's message. Older turns are dropped to fit as usual."""
        engine = scheduler.engine
        if not isinstance(engine, ContinuingEngine):
            raise ApiError(400, "unsupported_parameter", "continue is not supported by this server's engine")
        so_far = messages[-1].text
        render = _continued(engine.render, engine.extend, so_far)
        sampling = self._sampling(params, None)
        with self._place(scheduler, client) as place:
            try:
                prompt, dropped = await asyncio.to_thread(
                    fit, messages[:-1], params.system, render, engine.n_ctx, sampling.max_tokens
                )
            except ContextTooLong as exc:
                raise ApiError(400, "context_length_exceeded", str(exc)) from exc
            except TemplateError as exc:
                raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
            except EngineError as exc:
                raise ApiError(503, "engine_error", f"the model could not read the chat: {exc}") from exc
            return self._admit(place, prompt, sampling, dropped, ())

    async def _admit_tool_chat(
        self,
        scheduler: Scheduler,
        client: Caller | None,
        request: dict[str, Any],
        params: SamplingParams,
        json_schema: dict[str, Any] | None,
        stops: tuple[str, ...],
    ) -> Admitted:
        """An OpenAI request with tools, rendered by the engine as it stands: a chat with tools is
        not cut to fit (dropping turns could orphan a tool's answer), so it must fit whole."""
        engine = scheduler.engine
        if not isinstance(engine, ToolEngine):
            raise ApiError(400, "unsupported_parameter", "tools is not supported by this server's engine")
        render = partial(engine.render_chat, request)
        return await self._admit_whole(scheduler, client, render, params, json_schema, stops)

    async def _admit_whole(
        self,
        scheduler: Scheduler,
        client: Caller | None,
        render: Callable[[], Prompt],
        params: SamplingParams,
        json_schema: dict[str, Any] | None,
        stops: tuple[str, ...],
    ) -> Admitted:
        """Take a queue place, render the prompt under it, and queue it if it fits whole."""
        engine = scheduler.engine
        sampling = self._sampling(params, json_schema)
        with self._place(scheduler, client) as place:
            try:
                prompt = await asyncio.to_thread(render)
            except TemplateError as exc:
                raise ApiError(400, "invalid_request", f"the model's chat template refused the chat: {exc}") from exc
            except EngineError as exc:
                raise ApiError(503, "engine_error", f"the model could not read the prompt: {exc}") from exc
            needed = prompt.n_tokens + sampling.max_tokens
            if needed > engine.n_ctx:
                raise ApiError(400, "context_length_exceeded", str(ContextTooLong(needed, engine.n_ctx)))
            return self._admit(place, prompt, sampling, 0, stops)

    @staticmethod
    def _place(scheduler: Scheduler, client: Caller | None) -> Reservation:
        """A queue place for the request's preparation, or its 503 (the queue is full) or 429 (its
        address has as many answers as it may) before any costly work."""
        try:
            return scheduler.reserve(client)
        except QueueFull as exc:
            raise queue_full(exc) from exc
        except ClientBusy as exc:
            raise ApiError(429, "too_many_answers", f"{exc}; wait for one to end", {"Retry-After": "5"}) from exc

    @staticmethod
    def _admit(
        place: Reservation, prompt: Prompt, sampling: Sampling, dropped: int, stops: tuple[str, ...]
    ) -> Admitted:
        try:
            return place.scheduler, place.admit(prompt, sampling, dropped, stops)
        except QueueFull as exc:
            raise queue_full(exc) from exc


def completion_of(scheduler: Scheduler, job: Job) -> Completion:
    return Completion(scheduler.engine, scheduler.events(job), partial(scheduler.cancel, job), job.prompt.n_tokens)


def unavailable(name: str, exc: RemoteUnavailable) -> ApiError:
    return ApiError(503, "remote_unavailable", f"model {name} is unavailable: {exc}", {"Retry-After": "5"})


def check_continuation(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> None:
    """A 400 unless the chat ends in the model's answer so far, after a user's message, with no tool calls."""
    if len(messages) < 2 or messages[-1].user or not messages[-2].user:
        raise ApiError(400, "invalid_request", "continue needs a user's message, then the model's answer so far, last")
    if not messages[-1].text.strip():
        raise ApiError(400, "invalid_request", "continue needs the model's answer so far: its text is empty")
    if tools or any(m.calls for m in messages):
        raise ApiError(400, "unsupported_parameter", "continue cannot be used with tools or tool calls")


def _continued(
    render: Callable[[Sequence[Message], str | None], Prompt], extend: Callable[[Prompt, str], Prompt], so_far: str
) -> Callable[[Sequence[Message], str | None], Prompt]:
    """`render`, with the answer so far after the chat it renders."""
    return lambda messages, system: extend(render(messages, system), so_far)


def queue_full(exc: QueueFull) -> ApiError:
    return ApiError(503, "queue_full", f"{exc}; retry shortly", {"Retry-After": "5"})
