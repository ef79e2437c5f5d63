"""The Ollama front door: `/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/ps` and
`/api/version` at Ollama's own paths, so that Ollama's clients (its libraries, editor plugins,
Open WebUI) work unchanged when pointed at our port.

The same chat service as the other front doors; only the shapes differ. Answers stream as
NDJSON (the default, as in Ollama) or come whole with `stream: false`; `options` map onto our
sampling, with our bounds; errors are Ollama's `{"error": "..."}`. Options that set up the
model rather than sample it (`num_gpu`, `num_thread`, ...) are the server's settings here, and
are ignored as Ollama ignores the options a model does not use.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from server.bodies import body_of, check_schema_size, client_of
from server.chat import ChatService, Completion
from server.errors import ApiError
from server.events import Done, Failed, Text, Thought, ToolCall
from server.images import Located, data_url, image_parts
from server.models import ModelFile
from server.openai_api import FINISH, check_supported, whole_unless_hung_up
from server.openai_embeddings import MAX_INPUTS, check_dimensions
from wire.routes import Route
from wire.types import (
    MAX_MESSAGES,
    MAX_TOOLS,
    MaxTokens,
    Message,
    ModelName,
    RepeatPenalty,
    SamplingParams,
    Seed,
    SystemPrompt,
    Temperature,
    TopK,
    TopP,
    bounds,
)
from wire.types import Text as BoundedText

OLLAMA_VERSION = "0.12.0"  # the Ollama release whose API this follows: clients check it for features
NDJSON = "application/x-ndjson"


class Options(Struct):
    """The sampling part of Ollama's `options`. `num_predict` below 1 means "no limit" in Ollama;
    here the answer budget is then the server's MAX_TOKENS."""

    num_predict: int | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    repeat_penalty: RepeatPenalty | None = None
    seed: Seed | None = None
    stop: Annotated[list[str], Meta(max_length=8)] | None = None
    num_ctx: Annotated[int, Meta(ge=1)] | None = None  # bounded by the model's own window

    def sampling(self, system: str | None) -> SamplingParams:
        budget = self.num_predict if self.num_predict is not None and self.num_predict > 0 else None
        most = int(bounds(MaxTokens)[1])
        if budget is not None and budget > most:
            raise ApiError(400, "invalid_request", f"options.num_predict={budget}: at most {most}")
        return SamplingParams(
            max_tokens=budget, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
            repeat_penalty=self.repeat_penalty, seed=self.seed, system=system,
        )


class CalledFunction(Struct):
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolCallAsked(Struct):
    function: CalledFunction


class OllamaMessage(Struct):
    role: Literal["system", "user", "assistant", "tool"]
    content: BoundedText = ""
    thinking: BoundedText = ""
    images: list[str] | None = None
    tool_calls: list[ToolCallAsked] | None = None
    tool_name: str | None = None


# Unknown fields are allowed, as Ollama allows them: clients send keep_alive, think, and more.
class Asked(Struct):
    """What /api/chat and /api/generate share."""

    model: ModelName
    stream: bool = True
    options: Options = msgspec.field(default_factory=Options)
    format: str | dict[str, Any] | None = None
    images: list[str] | None = None
    tools: Annotated[list[dict[str, Any]], Meta(max_length=MAX_TOOLS)] | None = None
    think: bool | str | None = None

    def schema(self) -> dict[str, Any] | None:
        """The JSON schema of `format`: "json" is any JSON object, "" none."""
        if self.format in (None, ""):
            return None
        if self.format == "json":
            return {"type": "object"}
        if not isinstance(self.format, dict):
            raise ApiError(400, "invalid_request", f"format {self.format!r}: \"json\" or a JSON schema")
        check_schema_size("format", self.format)
        return self.format

    def check_tools(self) -> None:
        for i, tool in enumerate(self.tools or ()):
            check_schema_size(f"tools[{i}]", tool)

    def located(self) -> list[Located]:
        """The request's images (bare base64, as Ollama's clients send them), each named by its place."""
        return [Located(f"images[{j}]", data_url(b64)) for j, b64 in enumerate(self.images or ())]


class ChatRequest(Asked):
    messages: Annotated[list[OllamaMessage], Meta(max_length=MAX_MESSAGES)] = msgspec.field(default_factory=list)

    def uses_tools(self) -> bool:
        return bool(self.tools) or any(m.role == "tool" or m.tool_calls for m in self.messages)

    def tool_request(self) -> dict[str, Any]:
        """The chat as the OpenAI request the engine's tool path renders. Ollama's tool messages
        name their tool, not a call: each answers the earliest call not yet answered."""
        messages: list[dict[str, Any]] = []
        unanswered: list[str] = []
        for m in self.messages:
            if m.role == "tool":
                messages.append({"role": "tool", "content": m.content,
                                 "tool_call_id": unanswered.pop(0) if unanswered else m.tool_name or "call"})
                continue
            said: dict[str, Any] = {"role": m.role, "content": image_parts(m.content, urls_of(m))}
            if m.thinking:
                said["reasoning_content"] = m.thinking
            if m.tool_calls:
                ids = [f"call_{len(messages)}_{i}" for i in range(len(m.tool_calls))]
                unanswered = ids
                said["tool_calls"] = [
                    {"id": id, "type": "function",
                     "function": {"name": c.function.name, "arguments": json.dumps(c.function.arguments)}}
                    for id, c in zip(ids, m.tool_calls, strict=True)
                ]
            messages.append(said)
        return {"messages": messages, **({"tools": self.tools} if self.tools else {})}

    def located(self) -> list[Located]:
        return super().located() + [
            Located(f"messages[{i}].images[{j}]", url)
            for i, m in enumerate(self.messages) for j, url in enumerate(urls_of(m))
        ]

    def chat(self) -> tuple[list[Message], str | None]:
        self.check_tools()
        if self.images:
            raise ApiError(400, "invalid_request", "images: /api/chat takes them in a message's images")
        system = "\n".join(m.content for m in self.messages if m.role == "system")
        chat = [
            Message(m.role == "user", m.content, m.thinking, images=urls_of(m) if m.role == "user" else [])
            for m in self.messages if m.role != "system"
        ]
        return chat, system or None


class GenerateRequest(Asked):
    prompt: BoundedText = ""
    system: SystemPrompt | None = None
    raw: bool = False
    suffix: str | None = None
    template: str | None = None
    context: list[int] | None = None

    def chat(self) -> tuple[list[Message], str | None]:
        self.check_tools()
        for name, used in (("raw", self.raw), ("suffix", self.suffix), ("template", self.template),
                           ("context", self.context)):
            if used:
                raise ApiError(400, "unsupported_parameter", f"{name}: not supported; send the chat to /api/chat")
        return [Message(True, self.prompt, images=[image.url for image in self.located()])], self.system


def urls_of(message: OllamaMessage) -> list[str]:
    return [data_url(b64) for b64 in message.images or ()]


class ShowRequest(Struct):
    model: ModelName


class EmbedRequest(Struct):
    model: str
    input: str | Annotated[list[str], Meta(max_length=MAX_INPUTS)] = ""
    truncate: bool | None = None
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None
    dimensions: int | None = None

    def texts(self) -> list[str]:
        check_dimensions(self.dimensions)
        if self.truncate:  # asked for outright; an input over the window is a 400 either way
            raise ApiError(400, "unsupported_parameter", "truncate: inputs are never cut; send shorter ones")
        return [self.input] if isinstance(self.input, str) and self.input else list(self.input or [])


class LegacyEmbedRequest(Struct):
    """`/api/embeddings`, Ollama's first form: one `prompt`, one `embedding`."""

    model: str
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None


CHAT: Route[ChatRequest, Any] = Route("POST", "/api/chat", ChatRequest)
GENERATE: Route[GenerateRequest, Any] = Route("POST", "/api/generate", GenerateRequest)
TAGS: Route[Any, Any] = Route("GET", "/api/tags")
SHOW: Route[ShowRequest, Any] = Route("POST", "/api/show", ShowRequest)
PS: Route[Any, Any] = Route("GET", "/api/ps")
VERSION: Route[Any, Any] = Route("GET", "/api/version")
EMBED: Route[EmbedRequest, Any] = Route("POST", "/api/embed", EmbedRequest)
EMBEDDINGS: Route[LegacyEmbedRequest, Any] = Route("POST", "/api/embeddings", LegacyEmbedRequest)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def model_named(chats: ChatService, asked: str) -> tuple[str, ModelFile]:
    """The listed model a request names. Ollama's names carry a tag (`:latest` when none is given);
    ours are file names. Unlike the OpenAI door, an unlisted name is a 404 even with one model, as
    in Ollama: its clients read the 404 to offer the models there are."""
    name = asked.removesuffix(":latest")
    file = (await usable(chats)).get(name)
    if file is None:
        await chats.check_remote(name)  # a remote's model whose server is down: a 503, not "not found"
        raise ApiError(404, "model_not_found", f"model {asked!r} not found: GET /api/tags lists the models on offer")
    return name, file


async def chat(request: Request) -> Response:
    body = await body_of(request, CHAT)
    return await answer(request, body, "message")


async def generate(request: Request) -> Response:
    body = await body_of(request, GENERATE)
    return await answer(request, body, "response")


async def answer(request: Request, body: ChatRequest | GenerateRequest, field: str) -> Response:
    """An answer to /api/chat (its text in `message`) or /api/generate (in `response`)."""
    chats: ChatService = request.app.state.chats
    started = time.perf_counter_ns()
    name, _ = await model_named(chats, body.model)
    messages, system = body.chat()
    await chats.check_images(await chats.engine(name), body.located())
    schema = body.schema()
    tools = body.tool_request() if isinstance(body, ChatRequest) and body.uses_tools() else None
    check_supported((await chats.engine(name)).supports, {
        "format": ("response_format", schema is not None), "tools": ("tools", tools is not None),
    })
    head = {"model": body.model}
    if not messages or (field == "response" and not messages[-1].text):  # Ollama's way to load a model
        return JSONResponse({**head, "created_at": now(), **piece(field, ""), "done": True, "done_reason": "load"})
    params = body.options.sampling(system)
    stops = tuple(s for s in body.options.stop or () if s)
    completion = await chats.complete(
        name, messages if tools is None else [], params, stops, schema, tools, client_of(request), body.options.num_ctx
    )
    lines = answer_lines(head, field, completion, body.think is not False, started, request)
    if body.stream:
        return StreamingResponse(completion.streaming(ndjson(lines)), media_type=NDJSON)
    return await whole_unless_hung_up(request, completion, whole(lines, field))


def piece(field: str, text: str, thinking: str = "") -> dict[str, Any]:
    if field == "message":
        message = {"role": "assistant", "content": text}
        return {"message": {**message, "thinking": thinking} if thinking else message}
    return {"response": text, **({"thinking": thinking} if thinking else {})}


async def answer_lines(
    head: dict[str, Any], field: str, completion: Completion, thoughts: bool, started: int, request: Request
) -> AsyncIterator[dict[str, Any]]:
    """The answer's NDJSON objects: a piece per token, then the closing one with its counts."""
    async for event in completion.events:
        if isinstance(event, Text):
            yield {**head, "created_at": now(), **piece(field, event.text), "done": False}
        elif isinstance(event, Thought) and thoughts:
            yield {**head, "created_at": now(), **piece(field, "", event.text), "done": False}
        elif isinstance(event, ToolCall):
            message = {"role": "assistant", "content": "", "tool_calls": [ollama_call(event.call)]}
            yield {**head, "created_at": now(), "message": message, "done": False}
        elif isinstance(event, Failed):
            yield {"error": event.message}
            return
        elif isinstance(event, Done):
            request.state.completion_tokens = event.completion_tokens
            yield {**head, "created_at": now(), **piece(field, ""), "done": True, **counts(event, started)}


def ollama_call(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call in Ollama's words: its arguments an object, not JSON text."""
    function = call["function"]
    arguments = function.get("arguments") or "{}"
    return {"function": {"name": function["name"],
                         "arguments": json.loads(arguments) if isinstance(arguments, str) else arguments}}


def counts(done: Done, started: int) -> dict[str, Any]:
    """Ollama's closing counts; its durations are in nanoseconds."""
    prompt_ns = int((done.ttft_s or 0) * 1e9)
    decode_ns = int((done.completion_tokens - 1) / done.tokens_per_s * 1e9) if done.tokens_per_s else 0
    return {
        "done_reason": FINISH[done.stop_reason], "total_duration": time.perf_counter_ns() - started,
        "load_duration": 0, "prompt_eval_count": done.prompt_tokens, "prompt_eval_duration": prompt_ns,
        "eval_count": done.completion_tokens, "eval_duration": decode_ns,
    }


async def ndjson(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield msgspec.json.encode(line) + b"\n"


async def whole(lines: AsyncIterator[dict[str, Any]], field: str) -> Response:
    """The stream's objects folded into one: the closing one with the whole text."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    async for line in lines:
        if "error" in line:
            return JSONResponse(line, 500)
        part = line["message"] if field == "message" else line
        text.append(part.get("content" if field == "message" else "response", ""))
        thinking.append(part.get("thinking", ""))
        calls.extend(part.get("tool_calls", ()))
        if line["done"]:
            closing = {**line, **piece(field, "".join(text), "".join(thinking))}
            if calls:
                closing["message"]["tool_calls"] = calls
            return JSONResponse(closing)
    raise RuntimeError("the answer ended without a done event")  # pragma: no cover - the scheduler sends one


# -- the models ---------------------------------------------------------------------------------


def described(name: str, file: ModelFile) -> dict[str, Any]:
    """A model as /api/tags and /api/ps list it. The digest stands for the file as it is (its name,
    size and time), not a hash of its bytes: hashing gigabytes at every listing is no listing."""
    stat = file.path.stat() if file.path is not None else None
    size = stat.st_size if stat else 0
    stamp = f"{name}:{size}:{stat.st_mtime_ns if stat else 0}"
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat().replace("+00:00", "Z") if stat else now()
    return {"name": name, "model": name, "modified_at": modified, "size": size,
            "digest": hashlib.sha256(stamp.encode()).hexdigest(), "details": details(file)}


def details(file: ModelFile) -> dict[str, Any]:
    kind = Path(file.path).suffix.lstrip(".").lower() if file.path is not None else file.info.engine
    arch = file.info.architecture
    return {"parent_model": "", "format": kind, "family": arch, "families": [arch] if arch else None,
            "parameter_size": "", "quantization_level": ""}


async def usable(chats: ChatService) -> dict[str, ModelFile]:
    chats.model_named(None)  # 503 while the default model loads
    return {n: f for n, f in (await chats.models.afiles()).items() if f.info.usable}


async def tags(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    files = await usable(chats)
    return JSONResponse({"models": [described(name, file) for name, file in files.items()]})


async def ps(request: Request) -> Response:
    """The loaded models. Ollama unloads after keep_alive; ours stay until MAX_LOADED_MODELS makes
    room, so no expiry is given."""
    chats: ChatService = request.app.state.chats
    files = await usable(chats)
    loaded = [(n, files[n]) for n in chats.models.loaded_names if n in files]
    models = [{**described(n, f), "expires_at": None, "size_vram": 0, "context_length": f.info.n_ctx}
              for n, f in loaded]
    return JSONResponse({"models": models})


async def show(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, SHOW)
    name, file = await model_named(chats, body.model)
    arch = file.info.architecture
    info: dict[str, Any] = {"general.architecture": arch, f"{arch or 'model'}.context_length": file.info.n_ctx}
    # llama.cpp's chat path takes tools for any model (whether the model calls them is its template's),
    # and any GGUF model gives embeddings (server.engines.embedder)
    capabilities = ["completion", *(["tools", "embedding"] if file.info.engine == "llama-cpp" else [])]
    return JSONResponse({
        "modelfile": "", "parameters": "", "template": file.info.template, "details": details(file),
        "model_info": info, "capabilities": capabilities, "modified_at": described(name, file)["modified_at"],
    })


async def embed(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    started = time.perf_counter_ns()
    body = await body_of(request, EMBED)
    name, _ = await model_named(chats, body.model)
    texts = body.texts()
    # no input is Ollama's way to load a model
    _, vectors, tokens = await chats.embed(name, texts or [""], client_of(request))
    return JSONResponse({"model": body.model, "embeddings": vectors if texts else [], "load_duration": 0,
                         "total_duration": time.perf_counter_ns() - started, "prompt_eval_count": tokens})


async def embeddings(request: Request) -> Response:
    chats: ChatService = request.app.state.chats
    body = await body_of(request, EMBEDDINGS)
    name, _ = await model_named(chats, body.model)
    _, [vector], _ = await chats.embed(name, [body.prompt], client_of(request))
    return JSONResponse({"embedding": vector if body.prompt else []})


async def version(request: Request) -> Response:
    return JSONResponse({"version": OLLAMA_VERSION})


Handler = Callable[[Request], Awaitable[Response]]
ROUTES: tuple[tuple[Route[Any, Any], Handler], ...] = (
    (CHAT, chat), (GENERATE, generate), (TAGS, tags), (SHOW, show), (PS, ps), (VERSION, version),
    (EMBED, embed), (EMBEDDINGS, embeddings),
)
