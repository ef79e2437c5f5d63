"""Every setting, declared once: its default, bounds, help and command-line flag.

`Settings.load()` reads the settings from `.env`, then the environment, then command-line flags
(each wins over the one before); `Settings(...)` built in code takes the declared defaults for
whatever it is not given. `python -m server --help`, the README's table and `.env.example` are
generated from the same declarations: `python -m server.settings --write` rewrites the files.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dotenv import load_dotenv

from wire.types import CODE_TIME_LIMIT_S, MaxTokens, bounds

T = TypeVar("T")

ENGINES = ("auto", "llama-cpp", "ctransformers", "openai")
OPENAI_PROMPTS = ("auto", "chat", "text")
# llama.cpp's n-gram drafters (xllamacpp's COMMON_SPECULATIVE_TYPE_NGRAM_*): no draft model needed
NGRAM_KINDS = ("ngram_simple", "ngram_map_k", "ngram_map_k4v", "ngram_mod")
DRAFT_PREFIX = "draft:"  # SPECULATIVE=draft:<path>: a small draft model with the main model's vocabulary
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """A value a setting does not accept; the message names the setting and what it wants."""


@dataclass(frozen=True)
class Setting:
    """One setting's declaration. Its `Settings` field carries it; `SETTINGS` lists them all.

    The environment variable is the field's name in capitals, the flag that name in lower case
    with dashes (`N_CTX`: `--n-ctx`), and the type that of the default (or a choice of `choices`).
    """

    default: object
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    alias: str = ""  # a second, shorter flag
    secret: bool = False  # environment only: no flag, commented out in .env.example
    example: str = ""  # a sample value for .env.example when the default is empty
    check: Callable[[Any], bool] | None = None  # a further test of a value...
    wants: str = ""  # ...and what it wants, for the error
    name: str = ""  # the attribute, taken from the field

    @property
    def env(self) -> str:
        return self.name.upper()

    @property
    def flags(self) -> tuple[str, ...]:
        if self.secret:
            return ()
        flag = "--" + self.name.replace("_", "-")
        return (self.alias, flag) if self.alias else (flag,)

    @property
    def kind(self) -> str:
        """`str`, `int`, `float`, `bool` or `choice`."""
        return "choice" if self.choices else type(self.default).__name__

    def parse(self, text: str) -> Any:
        """The value of `text` (from the environment, `.env` or a flag), checked."""
        text = text.strip()
        if self.kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise self.error(text)
        if self.kind in ("int", "float"):
            try:
                number = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise self.error(text) from None
            return self.check_value(number)
        return self.check_value(text)

    def check_value(self, value: Any) -> Any:
        """`value` if this setting accepts it (an int is taken for a float), else SettingError."""
        kind = self.kind
        if isinstance(value, bool) != (kind == "bool"):
            raise self.error(value)
        if kind in ("int", "float"):
            if not isinstance(value, int) and not (kind == "float" and isinstance(value, float)):
                raise self.error(value)
            if kind == "float":
                value = float(value)
                if not math.isfinite(value):
                    raise self.error(value)
            if self.min is not None and value < self.min:
                raise SettingError(f"{self.env} must be at least {_number(self.min)}, not {value!r}")
            if self.max is not None and value > self.max:
                raise SettingError(f"{self.env} must be at most {_number(self.max)}, not {value!r}")
        elif kind in ("str", "choice") and not isinstance(value, str):
            raise self.error(value)
        try:
            if (self.choices and value not in self.choices) or (self.check and not self.check(value)):
                raise self.error(value)
        except SettingError:
            raise
        except ValueError as exc:  # a check that can say what is wrong says it best
            raise SettingError(f"{self.env}: {exc}") from None
        return value

    def error(self, value: object) -> SettingError:
        if self.secret:  # the value holds keys: an error goes to logs and terminals
            return SettingError(f"{self.env} must be {self.wanted}")
        return SettingError(f"{self.env} must be {self.wanted}, not {value!r}")

    @property
    def wanted(self) -> str:
        if self.wants:
            return self.wants
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.kind == "bool":
            return "one of " + ", ".join(f"{t}/{f}" for t, f in zip(_TRUE, _FALSE, strict=True))
        noun = {"int": "an integer", "float": "a number"}.get(self.kind, "a string")
        if self.min is not None and self.max is not None:
            return f"{noun} from {self.values}"
        return f"{noun} of {self.values}" if self.values else noun

    @property
    def values(self) -> str:
        """The accepted values in a few words: `1 to 65535`, `at least 0`, `auto, chat, text`, `yes/no`."""
        if self.choices:
            return ", ".join(self.choices)
        if self.kind == "bool":
            return "yes/no"
        if self.min is not None and self.max is not None:
            return f"{_number(self.min)} to {_number(self.max)}"
        if self.min is not None:
            return f"at least {_number(self.min)}"
        if self.max is not None:
            return f"at most {_number(self.max)}"
        return ""

    @property
    def shown_default(self) -> str:
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return "" if self.default == "" else _number(self.default)


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting(
    default: T,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] = (),
    alias: str = "",
    secret: bool = False,
    example: str = "",
    check: Callable[[Any], bool] | None = None,
    wants: str = "",
) -> T:
    """A `Settings` field: `default` unless the environment or a flag says otherwise."""
    declared = Setting(default, help, min, max, choices, alias, secret, example, check, wants)
    return field(default=default, metadata={"setting": declared})


def _template_ok(value: str) -> bool:
    return value in ("auto", "seed") or Path(value).expanduser().is_file()


KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
DEFAULT_KEY_NAME = "default"  # the name API_KEY's answers go by


def named_keys(value: str) -> dict[str, str]:
    """API_KEYS' `name:key,name:key` pairs, by name; ValueError for a malformed pair or a repeat."""
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        name, _, key = pair.partition(":")
        if not KEY_NAME.fullmatch(name) or not key or name in keys or key in keys.values():
            raise ValueError(pair.partition(":")[0])
        keys[name] = key
    return keys


def _keys_ok(value: str) -> bool:
    try:
        return DEFAULT_KEY_NAME not in named_keys(value)
    except ValueError:
        return False


@dataclass(frozen=True)
class RemoteSpec:
    """One server of REMOTES: its OpenAI-compatible base URL (no trailing slash) and its key ("": none)."""

    url: str
    key: str = ""


REMOTES_FORM = "comma-separated base URLs of OpenAI-compatible servers, each optionally followed by |KEY"


def parse_remotes(value: str) -> tuple[RemoteSpec, ...]:
    """REMOTES' servers, in order; ValueError names a malformed entry by its URL, never its key."""
    specs: list[RemoteSpec] = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        url, bar, key = (part.strip() for part in entry.partition("|"))
        url = url.rstrip("/")
        # a URL's user:password, query and fragment may hold keys too: an error names the rest
        shown = re.sub(r"//[^/]*@", "//", url.split("?", 1)[0].split("#", 1)[0])
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a port that is no number)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{shown!r} is not an http:// or https:// URL ({REMOTES_FORM})")
        if parts.username is not None or parts.query or parts.fragment:
            raise ValueError(f"{shown}: give the base URL alone (no user, query or fragment), its key after |")
        if bar and (not key or any(c.isspace() for c in key)):
            raise ValueError(f"{url}: the key after | is empty or has spaces")
        if any(spec.url == url for spec in specs):
            raise ValueError(f"{url} is named twice")
        specs.append(RemoteSpec(url, key))
    return tuple(specs)


def _remotes_ok(value: str) -> bool:
    parse_remotes(value)
    return True


def _speculative_ok(value: str) -> bool:
    if value.startswith(DRAFT_PREFIX):
        return Path(value.removeprefix(DRAFT_PREFIX)).expanduser().is_file()
    return value in ("auto", "off", *NGRAM_KINDS)


@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", "Address to bind; keep a loopback address unless API_KEY protects the API.")
    port: int = setting(3000, "Port to listen on.", min=1, max=65535)
    ollama_port: int = setting(
        0, "A second port to serve the same app on, for clients of Ollama's API that assume its port"
        " (11434); 0: none. Ollama's paths work on PORT either way.", min=0, max=65535,
    )
    engine: str = setting(
        "auto",
        "Model engine: auto (by the model file's first bytes: GGUF to llama-cpp, GGML to ctransformers),"
        " llama-cpp (GGUF, in llama.cpp's server engine through xllamacpp), ctransformers (legacy GGML"
        " files), or openai (a remote OpenAI-compatible server).",
        choices=ENGINES,
    )
    model_path: str = setting(
        "", "Model file to load; empty: the embedded Gemma 3 270M demo model.",
        alias="--model", example="/models/Wizard-Vicuna-7B-Uncensored.ggmlv3.q8_0.bin",
    )
    mmproj: str = setting(
        "", "A vision projector GGUF (mmproj) for MODEL_PATH: the model then takes images. In MODELS_DIR, an"
        " mmproj*.gguf beside a model goes with it by the name they share (mmproj-NAME-f16.gguf with NAME-Q4_K_M.gguf),"
        " or, naming none, as the folder's only projector beside its only model without one.",
        example="/models/mmproj-gemma-3-4b-it-f16.gguf", check=lambda v: not v or Path(v).expanduser().is_file(),
        wants="the path of an existing projector file",
    )
    models_dir: str = setting(
        "", "A folder of model files (GGUF, and GGML .bin) offered beside the default model (MODEL_PATH); each chat"
        " picks one by file name. Files added or removed show up without a restart. Empty:"
        " $XDG_DATA_HOME/snake_llama/models (~/.local/share/snake_llama/models), made when first read.",
        example="~/models",
    )
    offline: bool = setting(
        False, "Hide downloading models from the Hugging Face Hub (the only thing that reaches the network,"
        " and only when a user starts it). HF_ENDPOINT (a mirror) and HF_TOKEN (gated repositories) are read as"
        " the Hub's own tools read them.",
    )
    max_loaded_models: int = setting(
        1, "Local models kept loaded at once; the least recently used is unloaded when its answers end. Remote"
        " models (REMOTES) hold no memory here and are not counted.",
        min=1, max=64,
    )
    model_type: str = setting("llama", "ctransformers' model type for GGML files (llama, gptj, mpt, ...).")
    n_ctx: int = setting(
        4096, "Context window per chat, in tokens; older turns are dropped to fit.", min=256, max=1_048_576
    )
    parallel: int = setting(
        8, "Chats answered at once (llama.cpp slots); all share one KV cache pool.", min=1, max=256
    )
    kv_pool: int = setting(
        8192,
        "Tokens of KV cache that the chats answering at once share (llama.cpp); its memory does not grow"
        " with PARALLEL, and answers wait rather than overflow it. At least N_CTX.",
        min=256, max=16_777_216,
    )
    n_gpu_layers: int = setting(
        -1, "Layers to offload to the GPU with a GPU build of xllamacpp (-1: auto, 0: CPU only).", min=-1
    )
    cache_ram_mib: int = setting(
        1024, "Host RAM for llama.cpp's prompt cache, from which a chat that lost its slot may get its prefix back"
        " (0: off).",
        min=0, max=1_000_000,
    )
    speculative: str = setting(
        "auto",
        "Speculative decoding (llama.cpp): auto (n-gram drafting from the chat itself, which speeds up answers"
        " that repeat it: code edits, rewrites, quotes), off, an n-gram drafter by name"
        f" ({', '.join(NGRAM_KINDS)}), or {DRAFT_PREFIX}<path> for a small draft GGUF with the model's vocabulary.",
        check=_speculative_ok,
        wants=f"auto, off, {', '.join(NGRAM_KINDS)}, or {DRAFT_PREFIX}<path of an existing GGUF file>",
    )
    speculative_draft: int = setting(
        3,
        "Most tokens drafted at once by speculative decoding. Longer drafts speed up answers that repeat"
        " the chat (48 rewrites text about 1.5 times faster than 3), but the batch each draft takes slows"
        " the other chats answering at once below their fair share: keep it small on a shared server.",
        min=1, max=1024,
    )
    prompt_template: str = setting(
        "auto",
        "auto (the GGUF's own chat template, else the seed's ### Human template), seed, or a path to a"
        " .jinja file.",
        check=_template_ok, wants="auto, seed, or the path of an existing template file",
    )
    threads: int = setting(0, "CPU threads for the model (0: all cores).", min=0)
    max_tokens: int = setting(
        512, "Answer budget in tokens when a request sets none.", min=1, max=int(bounds(MaxTokens)[1])
    )
    queue_size: int = setting(
        32, "Requests that may wait for the model before new ones get 503.", min=0, max=1_000_000
    )
    max_answers_per_client: int = setting(
        16, "Answers one client address may have being prepared, waiting or running at once, over every model;"
        " one more gets 429. Bounds what clients that open many and go away can hold.", min=1, max=1_000_000,
    )
    answer_grace_s: float = setting(
        30.0,
        "Seconds an answer goes on after its page went away (a reload, a closed tab) for the page to come back"
        " to it; nobody back by then cancels it. 0: cancel as soon as the page hangs up.",
        min=0, max=3600,
    )
    max_body_bytes: int = setting(
        16 << 20, "Largest accepted request body, in bytes. A chat's images go with every request of it (a photo"
        " is about 0.5 MB once resized in the page).", min=1024, max=1 << 30,
    )
    mcp_config: str = setting(
        "", "A JSON file of MCP servers in the mcpServers format (Claude Desktop's, LM Studio's): each a"
        " command to run (stdio) or a url (Streamable HTTP). Their tools are listed at /api/tools.",
        example="~/.config/snake_llama/mcp.json",
    )
    tool_timeout_s: float = setting(
        30.0, "Seconds a tool call may take; then its result is an error the model reads.", min=0.1, max=3600,
    )
    code_time_limit_s: float = setting(
        CODE_TIME_LIMIT_S, "Seconds code run in the page (a Python block's Run button) may take before it is"
        " stopped.", min=1, max=3600,
    )
    max_tool_rounds: int = setting(
        8, "Rounds of tool calls one answer in the page may make; then the model must answer in words.",
        min=0, max=100,
    )
    header_timeout_s: float = setting(
        10.0, "Seconds a connection has to send a request's headers, counted from when it opened or its last"
        " answer ended; then it is closed.", min=0.1, max=3600,
    )
    send_timeout_s: float = setting(
        30.0, "Seconds a response may wait for a client that has stopped reading it (its buffers full); then"
        " the connection is cut.", min=0.1, max=3600,
    )
    idle_timeout_s: int = setting(
        5, "Seconds a connection may stay open with nothing sent between two requests (keep-alive).", min=1, max=3600
    )
    max_connections: int = setting(
        1024, "Open connections in all. One more first closes the oldest connection that has not sent its request"
        " yet, and is refused only when none is idle. Lowered to fit the open files the process may have.",
        min=1, max=1_000_000,
    )
    max_connections_per_client: int = setting(
        256, "Open connections from one client address, under the same rule as MAX_CONNECTIONS.",
        min=1, max=1_000_000,
    )
    openai_base_url: str = setting(
        "", "Remote engine (ENGINE=openai): base URL of an OpenAI-compatible server such as vLLM or llama.cpp's.",
        example="http://127.0.0.1:8000/v1",
    )
    openai_model: str = setting("", "Model to ask the remote for; empty: the first one it lists.", example="my-model")
    openai_api_key: str = setting("", "Bearer token for the remote server.", secret=True)
    openai_timeout: float = setting(
        120.0, "Seconds to wait for the next piece of an answer from the remote.", min=0.1, max=86_400
    )
    openai_parallel: int = setting(
        1,
        "Answers to stream from a remote at once where it does not report its slots (llama.cpp's server does, at"
        " /props): more for vLLM, which batches; 1 keeps one at a time, like a local model.",
        min=1, max=1024,
    )
    openai_prompt: str = setting(
        "auto",
        "How the remote engine prompts: chat (the remote's /chat/completions applies the model's template),"
        " text (/completions with the seed template), auto (chat unless the remote has no template).",
        choices=OPENAI_PROMPTS,
    )
    remotes: str = setting(
        "",
        "More models from other OpenAI-compatible servers (vLLM, llama.cpp's server, another snake_llama):"
        " comma-separated base URLs, each optionally with its bearer key after | (URL|KEY)."
        " Every model a server lists joins the list as host:port/model; a server that is down is listed"
        " unusable until it is back. Each streams as many answers at once as it reports slots (llama.cpp's"
        " /props), else OPENAI_PARALLEL.",
        secret=True, check=_remotes_ok, wants=REMOTES_FORM, example="http://gpu-box:8000/v1|KEY,http://127.0.0.1:8080/v1",
    )
    api_key: str = setting(
        "",
        "Bearer token that /api/* and /v1/* require (the page asks for it once); needed to serve on a"
        " non-loopback HOST.",
        secret=True,
    )
    api_keys: str = setting(
        "",
        "Named keys for a team, comma-separated name:key pairs (names of letters, digits, _ . -), each"
        " as good as API_KEY. Answers, /metrics and the access log go by the key's name; slots are"
        " shared fairly between names.",
        secret=True, check=_keys_ok,
        wants=f"comma-separated name:key pairs, each name and key once, no name {DEFAULT_KEY_NAME!r}",
    )
    key_parallel: int = setting(
        0, "The most answers one key's name may have running at once on a model; 0: no cap beyond PARALLEL.",
        min=0, max=1024,
    )
    open_status: bool = setting(
        False, "With API_KEY, serve /metrics and the details of /health (model, its file, template) without the"
        " key too, for a monitor that cannot send it. /health's status is always open.",
    )
    cors_origins: str = setting(
        "", "Comma-separated origins allowed to call the API from other pages; CORS is off when empty.",
        example="http://127.0.0.1:5173",
    )
    allow_insecure: bool = setting(
        False, "Serve on a non-loopback HOST without API_KEY (anyone on the network can use the model)."
    )
    dev: bool = setting(False, "Reload the page when client files change.")

    def __post_init__(self) -> None:
        for declared in SETTINGS:
            # frozen, so checked values go in the way dataclasses' own __init__ puts them
            object.__setattr__(self, declared.name, declared.check_value(getattr(self, declared.name)))

    @cached_property  # read at every request that /health or the guard checks
    def keys(self) -> dict[str, str]:
        """Every key the API takes, by the name its answers go by; empty: the API is open."""
        named = named_keys(self.api_keys)
        return {DEFAULT_KEY_NAME: self.api_key, **named} if self.api_key else named

    @cached_property
    def remote_specs(self) -> tuple[RemoteSpec, ...]:
        """REMOTES, parsed (checked already, when the settings were made)."""
        return parse_remotes(self.remotes)

    @classmethod
    def load(cls, env_file: str | os.PathLike[str] | None = ".env", **overrides: object) -> Settings:
        """Read `.env` (without overriding the real environment), then the environment, then
        `overrides` (strings are parsed like the environment's; None is left out)."""
        if env_file:
            load_dotenv(env_file, override=False)
        given: dict[str, Any] = {}
        for declared in SETTINGS:
            text = os.environ.get(declared.env, "").strip()
            if text:  # an empty variable means the default
                given[declared.name] = declared.parse(text)
        for name, value in overrides.items():
            if name not in BY_NAME:
                raise TypeError(f"no setting named {name!r}")
            if value is not None:
                given[name] = BY_NAME[name].parse(value) if isinstance(value, str) else value
        return cls(**given)


SETTINGS: tuple[Setting, ...] = tuple(replace(f.metadata["setting"], name=f.name) for f in fields(Settings))
BY_NAME = {declared.name: declared for declared in SETTINGS}


# Documents generated from the declarations.

ROOT = Path(__file__).resolve().parent.parent
README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"


def markdown_table() -> str:
    """The README's table of settings."""
    rows = ["| Setting | Flag | Default | Values | Meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        flags = ", ".join(f"`{flag}`" for flag in s.flags) or "(environment only)"
        default = f"`{s.shown_default}`" if s.shown_default else "—"
        meaning = s.help.replace("*", "\\*").replace("|", "\\|")
        rows.append(f"| `{s.env}` | {flags} | {default} | {s.values or '—'} | {meaning} |")
    return "\n".join(rows) + "\n"


def env_example() -> str:
    """`.env.example`: every setting with its help; secrets and empty ones commented out."""
    lines = [
        "# Copy to .env and edit; the real environment and `python -m server` flags override these,",
        "# and an empty value means the default. Generated from server/settings.py by",
        "# `python -m server.settings --write`: edit the declarations there, not this file.",
    ]
    for s in SETTINGS:
        lines.append("")
        about = s.help
        if s.kind in ("int", "float") and s.values:
            about += f" Range: {s.values}."
        elif s.choices:
            about += f" One of: {s.values}."
        lines += textwrap.wrap(about, 98, initial_indent="# ", subsequent_indent="# ")
        if s.secret or s.default == "":
            lines.append(f"# {s.env}={s.example}")
        elif isinstance(s.default, bool):
            lines.append(f"{s.env}={int(s.default)}")
        else:
            lines.append(f"{s.env}={s.shown_default}")
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str) -> str:
    """`readme` with the text between the settings markers replaced by `markdown_table()`."""
    pattern = re.compile(re.escape(README_START) + r"\n.*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise ValueError(f"README.md has no {README_START} ... {README_END} section")
    return pattern.sub(lambda _: f"{README_START}\n{markdown_table()}{README_END}", readme, count=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m server.settings", description="Documents generated from the settings' declarations."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="print the README's settings table")
    what.add_argument("--env-example", action="store_true", help="print .env.example")
    what.add_argument("--write", action="store_true", help="rewrite README.md's table and .env.example")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    elif args.env_example:
        sys.stdout.write(env_example())
    else:
        readme = ROOT / "README.md"
        readme.write_text(readme_with_table(readme.read_text()))
        (ROOT / ".env.example").write_text(env_example())


if __name__ == "__main__":
    main()
