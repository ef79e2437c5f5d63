"""What requests and responses carry: messages, sampling and its bounds, models, token counts, health."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct

MAX_TEXT = 100_000

Text = Annotated[str, Meta(max_length=MAX_TEXT)]


# Tools a request may offer, on every front door: each one's schema becomes part of a grammar.
MAX_TOOLS = 128
ToolName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]  # what OpenAI's function names allow


class ToolUse(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tool call the model made, and what came of it: the tool's answer, or why there is none
    (an error, a user's refusal), which the model reads alike."""

    id: Annotated[str, Meta(min_length=1, max_length=128)]
    name: ToolName
    arguments: Text  # JSON, as the model wrote it
    result: Text
    is_error: bool = False


# Images a message may carry: each is read by the model's vision projector before the answer starts.
MAX_IMAGES = 16


class Message(Struct, forbid_unknown_fields=True, omit_defaults=True):
    user: bool
    text: Text
    thoughts: Text = ""  # an answer's reasoning; the model's template decides whether it is shown again
    calls: Annotated[list[ToolUse], Meta(max_length=MAX_TOOLS)] = msgspec.field(default_factory=list)  # a model's
    # `data:image/...;base64,` URLs, which the model sees before the message's text, in this order
    images: Annotated[list[str], Meta(max_length=MAX_IMAGES)] = msgspec.field(default_factory=list)


# One bound on a chat's length for every front door: each message costs work before it can queue.
MAX_MESSAGES = 2_000


class Conversation(Struct, forbid_unknown_fields=True):
    messages: Annotated[list[Message], Meta(min_length=1, max_length=MAX_MESSAGES)]


# Sampling bounds, defined once: the OpenAI front door and the settings form use them too.
MaxTokens = Annotated[int, Meta(ge=1, le=32_768)]
Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
TopP = Annotated[float, Meta(ge=0.0, le=1.0)]
TopK = Annotated[int, Meta(ge=0, le=1000)]
RepeatPenalty = Annotated[float, Meta(ge=0.5, le=2.0)]
Seed = Annotated[int, Meta(ge=0, le=2**31 - 1)]
SYSTEM_MAX = 10_000
SystemPrompt = Annotated[str, Meta(max_length=SYSTEM_MAX)]  # the global one, a chat's own, one to count with

# Seconds code run in the page (client.sandbox) may take by default; the server's CODE_TIME_LIMIT_S sets
# the page's, in this attribute of its <html> (server/static.py).
CODE_TIME_LIMIT_S = 30.0
CODE_TIME_LIMIT_ATTRIBUTE = "data-code-time-limit-s"


def bounds(bounded: Any) -> tuple[float, float]:
    """The (low, high) of one of the bounded types above."""
    meta = get_args(bounded)[1]
    return meta.ge, meta.le


class SamplingParams(Struct, forbid_unknown_fields=True, omit_defaults=True):
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    repeat_penalty: RepeatPenalty | None = None
    seed: Seed | None = None
    system: SystemPrompt | None = None  # None: the server's default; "": none at all


ModelName = Annotated[str, Meta(min_length=1, max_length=255)]


class ToolSpec(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A tool the model may call, as the model sees it: its name, what it does, its arguments'
    JSON schema."""

    name: ToolName
    description: Annotated[str, Meta(max_length=SYSTEM_MAX)] = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ConverseRequest(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An answer to the conversation's last message: a user's, or a model's whose tool calls
    have their results (the answer goes on from them). With `continue`, the last message is the
    model's own answer so far (cut short by its token limit or a dropped connection), and the
    model goes on writing it: the new text follows that text directly."""

    conversation: Conversation
    params: SamplingParams = msgspec.field(default_factory=SamplingParams)
    model: ModelName | None = None  # a file name from GET /api/models; None: the server's default
    tools: Annotated[list[ToolSpec], Meta(max_length=MAX_TOOLS)] = msgspec.field(default_factory=list)
    continue_: bool = msgspec.field(default=False, name="continue")


# The prompt templates the server names by id (ModelInfo.template), in the words people read: the
# server names its template with these (TemplateInfo.name) and the page describes models with them.
TEMPLATE_NAMES = {
    "seed": "Simple Human/Assistant chat",  # the seed's few-shot "### Human:" format, for any model
    "gguf": "The model's own chat template",  # the file's tokenizer.chat_template
}


class TemplateInfo(Struct):
    """The prompt template the server formats chats with, and where it came from, in words: the
    model file's `tokenizer.chat_template`, "built-in" for the seed's, or a template file's path."""

    name: str
    source: str


class Health(Struct):
    """`GET /health`: "ok" once the default model is up (200), "loading" until then (503).
    Unknown fields are fine (a newer server may add some); older ones send no template."""

    status: Literal["ok", "loading"]
    engine: str | None = None
    model: str | None = None  # the default model
    model_path: str | None = None  # its file (None for a remote model)
    template: TemplateInfo | None = None
    n_ctx: int | None = None
    parallel: int | None = None  # answers it streams at once
    models_loaded: list[str] = msgspec.field(default_factory=list)
    vision: bool = False  # the default model takes images


class ModelInfo(Struct):
    """One model file the server offers (`GET /api/models`)."""

    name: str  # the file name: what ConverseRequest.model and OpenAI's `model` take
    usable: bool
    reason: str = ""  # why it is not usable
    engine: str = ""
    n_ctx: int = 0
    template: str = ""  # where its prompt template comes from: "gguf" (the file's own), "seed", or a file's path
    architecture: str = ""  # a GGUF's general.architecture ("gemma3", "llama", ...)
    loaded: bool = False
    size: int = 0  # bytes on disk (every part of a split model)
    quant: str = ""  # its weights' quantization ("Q4_K_M"), where its header says
    deletable: bool = False  # a file in the models folder (not the embedded default): the page may delete it
    vision: bool = False  # it takes images: a vision projector goes with it


class ModelList(Struct):
    default: str  # the model a chat gets when it names none
    models: list[ModelInfo]


class TokensRequest(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`POST /api/tokens`: how many tokens `text` with `images` (as Message.images) takes as a
    user's message to `model` (None: the default) under `system`, as SamplingParams.system (None:
    the server's default; "": none)."""

    text: Text
    model: ModelName | None = None
    system: SystemPrompt | None = None
    images: Annotated[list[str], Meta(max_length=MAX_IMAGES)] = msgspec.field(default_factory=list)


class TokenCount(Struct):
    """What `POST /api/tokens` answers, counted by the model's own tokenizer and chat template."""

    model: str
    tokens: int  # the text's own tokens
    overhead: int  # what a prompt holding only an empty message takes: template and system prompt
    n_ctx: int  # the model's context: prompt plus answer
    max_tokens: int  # the server's answer budget when a request sets none


class ToolInfo(Struct):
    """A tool an MCP server offers, or a built-in one (`GET /api/tools`)."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


BUILTIN = "built-in"  # the `server` of the tools the page runs itself
PYTHON_TOOL = ToolInfo(
    BUILTIN,
    "python",
    "Runs Python code in a sandbox in the user's browser (the standard library; no network) and gives back"
    " what it printed and any error. Files the user attached are in its working folder.",
    {"type": "object", "properties": {"code": {"type": "string", "description": "The Python code to run"}},
     "required": ["code"]},
)
BUILTIN_TOOLS = (PYTHON_TOOL,)


class ToolList(Struct):
    tools: list[ToolInfo]


class ToolCallRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/tools/call`: run `name` on MCP server `server` (what the page does once allowed)."""

    server: Annotated[str, Meta(max_length=256)]
    name: Annotated[str, Meta(max_length=256)]
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolCallResult(Struct):
    """A tool's answer: its text, or its error (`is_error`), which goes back to the model alike."""

    text: str
    is_error: bool


RepoId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")]


class HubFile(Struct):
    """A model in a Hugging Face repository: one GGUF file, or a split set of them as one."""

    name: str  # its file name (a split set's first part): what it is called once downloaded
    files: list[str]  # what downloading it fetches: the file, or every part of the set
    size: int  # bytes, every part
    quant: str = ""  # the quantization its name says ("Q4_K_M"); "" where it says none
    fits: bool = False  # smaller than this machine's free memory
    best: bool = False  # the largest that fits


class HubRepo(Struct):
    """`GET /api/hub/{owner}/{name}`: a repository's GGUF models and projectors (`mmproj` files,
    for vision), and this machine's free memory and free space in the models folder, in bytes."""

    repo: str
    models: list[HubFile]
    projectors: list[HubFile]
    memory_free: int
    disk_free: int


class DownloadRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/downloads`: fetch model `name` (a HubFile's) of `repo` into the models folder;
    `vision`: its repository's projector too."""

    repo: RepoId
    name: Annotated[str, Meta(min_length=1, max_length=255)]
    vision: bool = False


DownloadStatus = Literal["downloading", "checking", "done", "failed", "cancelled"]


class Download(Struct):
    """A download the server runs; it goes on whether or not a page watches it."""

    id: str
    repo: str
    name: str
    files: list[str]
    total: int  # bytes
    done: int  # bytes so far
    speed: float  # bytes a second, lately
    status: DownloadStatus
    error: str = ""  # why it failed


class DownloadList(Struct):
    """`GET /api/downloads`: the downloads since the server started; `enabled`: false when
    OFFLINE hides downloading."""

    downloads: list[Download]
    enabled: bool = True
