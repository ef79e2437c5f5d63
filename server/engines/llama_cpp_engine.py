"""GGUF models on llama.cpp's own server engine, through `xllamacpp`, in a child process.

llama.cpp runs continuous batching over `parallel` slots that share one unified KV cache pool,
keeps each slot's prompt cache, and saves idle slots to a host-RAM prompt cache from which any
chat's prefix is restored into any slot. It runs in a child process of ours (loading it in ours
would stall every request: see server.engines.llama_process), reached over its HTTP listener. We
drive its completions with a prompt we tokenize ourselves, so that text a user types never
becomes a control token: llama.cpp parses special tokens in whatever text it is given, chat
messages included.

With a chat template, llama.cpp renders the chat with each message's text replaced by a sentinel;
the template's own text is then tokenized with special tokens parsed, and each message's text
without. The tokenizer and the template renderer are llama.cpp's, reached over its HTTP listener,
which listens on a Unix socket in a private directory and wants a key only this process knows.

With a vision projector, a chat that holds images goes to llama.cpp as text with a marker where
each image goes, and the images beside it: llama.cpp reads that text with special tokens parsed,
so every text in it from a client is defused first (`server.prompt.defuse`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from server.engines.base import (
    EngineError,
    Generation,
    ModelLoadError,
    Piece,
    Progress,
    Prompt,
    PromptTemplate,
    TemplateError,
    Text,
    Thought,
    ToolCall,
    Usage,
)
from server.engines.gguf import read_header
from server.engines.grammar_tools import GrammarTools, ToolTurn, as_chat
from server.engines.listener_completion import CHAT, COMPLETIONS, NATIVE, stream_completion
from server.engines.llama_process import DYING_S, LlamaProcess
from server.engines.projector import check_projector
from server.images import ImageError, base64_of
from server.prompt import (
    SEED,
    STOP_MARKERS,
    TURN_MARKERS,
    build_prompt,
    defuse,
    defuse_all,
    merge_turns,
    neutralise,
)
from server.reasoning import OPEN, opens_thinking
from server.sampling import Sampling
from server.settings import DRAFT_PREFIX
from wire.types import TEMPLATE_NAMES, Message

log = logging.getLogger("snake_llama")

SENTINEL = re.compile("\ue000(\\d+)\ue001")  # private-use characters: no template writes them
CLOSE_TIMEOUT = 10.0
# llama.cpp reports a prompt's progress, and so can be cancelled, once per batch: on a CPU a
# batch this size takes about a second, so Stop frees the model within one while a long prompt
# is read. A GPU reads llama.cpp's default batch (2048) faster than that.
CPU_PROMPT_BATCH = 256
LISTENER = "http://localhost"  # the host is a formality: requests go to the Unix socket
# SPECULATIVE=auto: drafts only where the chat repeats itself, so it costs little elsewhere
AUTO_DRAFTER = "ngram_map_k"
SOCKET_DIR_PREFIX = "snake_llama-"  # in the temp folder: one private folder per engine, for its socket
OWNER_FILE = "pid"  # in that folder: the process that made it, so a later start can tell it is stale


def _has_gpu(xllamacpp: Any) -> bool:
    """Whether this build of xllamacpp sees a GPU (a CPU wheel sees none, whatever N_GPU_LAYERS says)."""
    cpu = xllamacpp.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_CPU
    return any(device.get("type") != cpu for device in xllamacpp.get_device_info())


def make_socket_dir() -> str:
    """A private folder for llama.cpp's socket (mode 0700: only we can reach it), marked with our
    pid; first removes the folders of engines whose process died without removing its own."""
    remove_stale_socket_dirs()
    folder = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX)
    Path(folder, OWNER_FILE).write_text(str(os.getpid()))
    return folder


def remove_stale_socket_dirs() -> None:
    """Remove the socket folders a killed engine left (`kill -9` runs no cleanup): only ours (our
    uid), and only where the recorded process is gone. A folder without a pid is kept: it may
    be one whose engine is starting right now, or not one of ours at all."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*"):
        try:
            info = folder.lstat()
            pid = int((folder / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 sends nothing; refused, it is another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def serve_privately(params: Any, folder: str, key: str, threads: int) -> None:
    """What every llama.cpp instance of ours shares: `threads` (0: one per core), and its HTTP
    listener on a Unix socket in `folder` that wants `key`."""
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or os.cpu_count() or 1
    params.hostnames = [socket_in(folder)]
    params.api_keys = [key]
    params.endpoint_slots = False
    params.ui = False  # llama.cpp's web page would be one more thing its listener serves without the key
    params.verbosity = 1  # errors only: llama.cpp logs every request at info


def socket_in(folder: str) -> str:
    return os.path.join(folder, "llama.sock")


def chat_params(
    *, model: str, kv_pool: int, parallel: int, threads: int, n_gpu_layers: int, cache_ram_mib: int,
    chat_template: str, mmproj: str, speculative: str, speculative_draft: int, folder: str, key: str,
) -> Any:
    """llama.cpp's parameters for a chat engine; called in the child process that loads it."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_ctx = kv_pool  # one unified pool; each slot may use up to n_ctx of it (our fitting)
    params.kv_unified = True
    params.n_parallel = parallel
    params.swa_full = True  # sliding-window models (Gemma 3) keep whole prefixes reusable
    params.cache_ram_mib = cache_ram_mib
    # Idle slots keep their cache in the pool until it needs the room (llama.cpp then clears
    # one): clearing them at every new answer would make chats taking turns re-read everything.
    params.cache_idle_slots = False
    params.n_gpu_layers = n_gpu_layers
    if n_gpu_layers == 0 or not _has_gpu(xllamacpp):
        params.n_batch = min(params.n_batch, CPU_PROMPT_BATCH)
    params.chat_template = chat_template
    if mmproj:
        params.mmproj.path = mmproj
        params.mmproj_use_gpu = params.n_gpu_layers != 0
    serve_privately(params, folder, key, threads)
    LlamaCppEngine._speculate(params, speculative, speculative_draft)
    return params


def sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


@dataclass(frozen=True)
class MediaPrompt:
    """A chat with images, as llama.cpp reads it: text with its media marker where each image
    goes, the images (base64), and what `Slots` knows the prompt by (its text tokens, with each
    image's digest in its place)."""

    text: str
    images: tuple[str, ...]
    key: tuple[int | str, ...]


class Slots:
    """Which of llama.cpp's slots each answer runs in.

    llama.cpp would pick the slot whose cache shares the most with a prompt, and every chat
    shares the template's opening lines, so chats taking turns would keep taking one another's
    slot and re-reading their histories. Instead a chat goes back to the slot whose last prompt
    its prompt extends, and a new chat takes the slot used least recently.
    """

    def __init__(self, n: int) -> None:
        self._held: list[tuple[int | str, ...]] = [()] * n  # each slot's last prompt
        self._free = list(range(n))  # least recently used first
        self._lock = threading.Lock()

    def take(self, tokens: Sequence[int | str]) -> int:
        with self._lock:
            if not self._free:
                raise EngineError("every llama.cpp slot is busy")  # the scheduler runs at most PARALLEL
            ours = [i for i in self._free if self._held[i] and tuple(tokens[: len(self._held[i])]) == self._held[i]]
            slot = max(ours, key=lambda i: len(self._held[i])) if ours else self._free[0]
            self._free.remove(slot)
            self._held[slot] = tuple(tokens)
            return slot

    def give_back(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


def _texts(chat: list[dict[str, str]]) -> list[str]:
    """The texts of a chat's messages (contents and thoughts), in order."""
    return [v for m in chat for k, v in m.items() if k != "role"]


def add_tool_call(calls: list[dict[str, Any]], delta: dict[str, Any]) -> None:
    """Fold one streamed piece of a tool call into the whole calls (OpenAI's stream shape: the
    first piece of a call has its id and name, later ones add to its arguments)."""
    index = int(delta.get("index", len(calls)))
    while len(calls) <= index:
        calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    call, function = calls[index], delta.get("function") or {}
    call["id"] = delta.get("id") or call["id"]
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


class LlamaCppEngine:
    name = "llama-cpp"
    supports = frozenset({"response_format", "tools"})

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int,
        kv_pool: int,
        parallel: int,
        threads: int,
        n_gpu_layers: int,
        cache_ram_mib: int,
        prompt_template: str,
        speculative: str,
        speculative_draft: int,
        mmproj: Path | None = None,
    ) -> None:
        """`mmproj`: the vision projector that lets the model take images. The model loads in a
        child process (server.engines.llama_process)."""
        self.model = path.name
        self.n_ctx = n_ctx
        self.capacity = kv_pool
        self.parallel = parallel
        meta = read_header(path).meta
        trained = meta.get(f"{meta.get('general.architecture')}.context_length")
        if isinstance(trained, int) and n_ctx > trained:
            raise ModelLoadError(
                f"N_CTX={n_ctx} is more than {path.name} was trained for ({trained} tokens):"
                f" set N_CTX to {trained} or less"
            )
        if n_ctx > kv_pool:
            raise ModelLoadError(f"N_CTX={n_ctx} is more than KV_POOL={kv_pool}: one chat must fit in the pool")
        jinja, self.template = self._pick_template(path, meta, prompt_template)
        self.vision = mmproj is not None
        if mmproj is not None:
            check_projector(mmproj)  # llama.cpp may crash on a damaged one, rather than refuse it
        self._dir = make_socket_dir()
        key = secrets.token_urlsafe(32)
        self._process = LlamaProcess(
            chat_params, model=str(path), kv_pool=kv_pool, parallel=parallel, threads=threads,
            n_gpu_layers=n_gpu_layers, cache_ram_mib=cache_ram_mib, chat_template=jinja or "",
            mmproj=str(mmproj or ""), speculative=speculative, speculative_draft=speculative_draft,
            folder=self._dir, key=key,
        )
        if not self._process.ok:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise self._load_error(path, self._process.said, kv_pool, self._process.version, mmproj)
        if speculative.startswith(DRAFT_PREFIX) and " E " in self._process.said:
            # llama.cpp serves on without the draft model it could not use
            self._process.close(CLOSE_TIMEOUT)
            shutil.rmtree(self._dir, ignore_errors=True)
            draft = Path(speculative.removeprefix(DRAFT_PREFIX)).expanduser()
            raise self._draft_error(path, draft, self._process.said)
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_in(self._dir)), base_url=LISTENER,
            headers={"Authorization": f"Bearer {key}"}, timeout=60,
        )
        self._closed = threading.Event()
        self._answers: set[threading.Thread] = set()
        self._slots = Slots(parallel)
        self._bos = self.tokenize("", special=True, add_special=True)[:1]
        markers = [m for m in TURN_MARKERS if len(self.tokenize(m, special=True)) == 1]
        self._template_stops = tuple(markers)
        source = jinja if jinja is not None else meta.get("tokenizer.chat_template")
        self._may_think = self._thinks(source)
        # a template that names `tools` renders them, and llama.cpp parses its calls; with any other
        # the tools are called under a grammar of ours (server.engines.grammar_tools)
        self._native_tools = self.template is not SEED and isinstance(source, str) and "tools" in source
        # where an image goes in the text llama.cpp reads: random at each start, so no text can forge one
        self._marker: str = self._get("/props")["media_marker"] if self.vision else ""
        # llama.cpp puts BOS before a text with images itself: a template's own would be a second
        self._bos_text: str = self._post("/detokenize", {"tokens": self._bos})["content"] if self._bos else ""
        self._image_tokens: dict[str, int] = {}  # by the image's digest: counting decodes the image

    def _thinks(self, template: object) -> bool:
        """Whether the model may write think blocks: its template knows thoughts, or its vocabulary
        has `<think>` as a token of its own (a reasoning model's)."""
        if self.template is SEED:
            return False
        knows = isinstance(template, str) and (OPEN in template or "reasoning_content" in template)
        return knows or len(self.tokenize(OPEN, special=True)) == 1

    @staticmethod
    def _speculate(params: Any, choice: str, draft_max: int) -> Path | None:
        """Set up speculative decoding as SPECULATIVE and SPECULATIVE_DRAFT say; the draft model's
        path, if one is used."""
        import xllamacpp

        spec = params.speculative
        kinds = xllamacpp.common_speculative_type
        if choice == "off":
            return None
        if not choice.startswith(DRAFT_PREFIX):
            drafter = AUTO_DRAFTER if choice == "auto" else choice
            spec.types = [getattr(kinds, f"COMMON_SPECULATIVE_TYPE_{drafter.upper()}")]
            if drafter == "ngram_mod":
                spec.ngram_mod.n_max = draft_max
                spec.ngram_mod.n_min = min(spec.ngram_mod.n_min, draft_max)
            else:
                getattr(spec, drafter).size_m = draft_max  # the drafted continuation's length
            return None
        draft = Path(choice.removeprefix(DRAFT_PREFIX)).expanduser()
        spec.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        spec.draft.n_max = draft_max
        spec.draft.n_min = min(spec.draft.n_min, draft_max)
        spec.draft.mparams.path = str(draft)
        spec.draft.n_gpu_layers = params.n_gpu_layers
        spec.draft.cpuparams.n_threads = spec.draft.cpuparams_batch.n_threads = params.cpuparams.n_threads
        return draft

    @staticmethod
    def _draft_error(path: Path, draft: Path, said: str) -> ModelLoadError:
        """A draft model llama.cpp would not use, in one line (its last error, past its function name)."""
        errors = [line.rsplit(": ", 1)[-1].strip() for line in said.splitlines() if " E " in line]
        return ModelLoadError(
            f"SPECULATIVE={DRAFT_PREFIX}{draft}: llama.cpp cannot draft for {path.name} with {draft.name}"
            f" ({errors[-1]}); use a small model with the same vocabulary, or SPECULATIVE=auto"
        )

    @staticmethod
    def _load_error(path: Path, said: str, kv_pool: int, version: str, mmproj: Path | None = None) -> ModelLoadError:
        """Whose fault a failed load is, in one line: the KV pool's size, the projector's, or the file's."""
        errors = [" ".join(line.split()[2:]) for line in said.splitlines() if " E " in line]
        first = errors[0] if errors else "nothing"
        if mmproj is not None and ("mmproj" in said or "multimodal" in said or "clip" in said):
            return ModelLoadError(
                f"llama.cpp could not load the vision projector {mmproj} with {path.name} (it said: {first});"
                f" check that it is the projector made for this model, of a type xllamacpp {version} knows"
            )
        if "failed to allocate" in said or "insufficient memory" in said:
            return ModelLoadError(
                f"KV_POOL={kv_pool} does not fit in memory with {path.name} (llama.cpp: {first}); lower KV_POOL"
            )
        return ModelLoadError(
            f"llama.cpp could not load {path} (it said: {first}); check that the file is a complete GGUF"
            f" model of an architecture xllamacpp {version} knows"
        )

    @staticmethod
    def _pick_template(path: Path, meta: dict[str, Any], choice: str) -> tuple[str | None, PromptTemplate]:
        """The Jinja source to give llama.cpp (None: the model's own, or the seed's template when
        the answer is `SEED`) and how to name it."""
        if choice == "seed":
            return None, SEED
        if choice == "auto":
            if isinstance(meta.get("tokenizer.chat_template"), str):
                return None, PromptTemplate(TEMPLATE_NAMES["gguf"], f"{path.name}: tokenizer.chat_template")
            return None, SEED
        file = Path(choice).expanduser()
        return file.read_text(), PromptTemplate(file.name, str(file))

    # -- tokens and templates --------------------------------------------------------------

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        return self._ask("POST", route, body)

    def _get(self, route: str) -> Any:
        return self._ask("GET", route, None)

    def _ask(self, method: str, route: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self._http.request(method, route, json=body)
        except httpx.HTTPError as exc:  # a text too long to tokenize within the timeout, say
            raise EngineError(f"llama.cpp {route}: {type(exc).__name__}: {exc}") from exc
        data = response.json()
        if response.status_code != 200:
            message = data.get("error", {}).get("message", response.text) if isinstance(data, dict) else data
            raise EngineError(f"llama.cpp {route}: {message}")
        return data

    def tokenize(self, text: str, special: bool = False, add_special: bool = False) -> list[int]:
        """Token ids of `text`; `special` parses control-token text (template text only, never a
        user's text)."""
        body = {"content": text, "parse_special": special, "add_special": add_special}
        return list(self._post("/tokenize", body)["tokens"])

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        if any(m.images for m in messages):
            return self._render_media(messages, system)
        if self.template is SEED:  # the seed's few-shot prompt has no place for thoughts
            text = self._bos + self.tokenize(build_prompt(messages, system))
            return Prompt(len(text), STOP_MARKERS, text, may_think=False)
        chat = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
        for m in merge_turns(messages):
            chat.append({"role": "user" if m.user else "assistant", "content": m.text.strip()})
            if m.thoughts.strip() and not m.user:  # the template decides whether the model sees them again
                chat[-1]["reasoning_content"] = m.thoughts.strip()
        if self._is_plain("\n".join(_texts(chat))):  # the usual case: llama.cpp's own tokenization
            rendered = self._apply_template(chat)
            tokens = self.tokenize(rendered, special=True)
        else:
            rendered, tokens = self._tokenize_apart(chat)
        if self._bos and tokens[:1] != self._bos:
            tokens = self._bos + tokens
        return Prompt(len(tokens), self._template_stops, tokens, opens_thinking(rendered), self._may_think)

    # -- images ------------------------------------------------------------------------------

    def image_tokens(self, url: str) -> int:
        """The tokens an image (a `data:` URL) takes in a prompt, its begin and end markers
        included; `ImageError` if the model takes no images or llama.cpp cannot decode this one."""
        if not self.vision:
            raise ImageError(f"{self.model} takes no images: no vision projector goes with it")
        data = base64_of(url)
        digest = hashlib.sha256(data.encode()).hexdigest()
        if digest not in self._image_tokens:
            # llama.cpp counts an image only inside a chat: the same chat without it is the rest
            part = {"type": "image_url", "image_url": {"url": url}}
            try:
                with_image = self._count_chat([{"role": "user", "content": [part]}])
            except EngineError as exc:
                raise ImageError(f"llama.cpp cannot read it as an image ({str(exc).split(': ', 1)[-1]})") from None
            self._image_tokens[digest] = with_image - self._count_chat([{"role": "user", "content": ""}])
        return self._image_tokens[digest]

    def _count_chat(self, messages: list[dict[str, Any]]) -> int:
        return int(self._post("/v1/chat/completions/input_tokens", {"messages": messages})["input_tokens"])

    def _render_media(self, messages: Sequence[Message], system: str | None) -> Prompt:
        """A chat with images: the text with a marker before each message's text for each of its
        images, every client's text defused, and its count (text tokens as llama.cpp cuts the
        text at the markers, plus each image's)."""
        turns = merge_turns(messages)
        marked = [Message(m.user, self._marker * len(m.images) + defuse(m.text), defuse(m.thoughts)) for m in turns]
        system = defuse(system) if system else system
        if self.template is SEED:
            text, thinking = build_prompt(marked, system), False
        else:
            chat = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
            for m in marked:
                chat.append({"role": "user" if m.user else "assistant", "content": m.text.strip()})
                if m.thoughts.strip() and not m.user:
                    chat[-1]["reasoning_content"] = m.thoughts.strip()
            text = self._apply_template(chat)
            thinking = opens_thinking(text)
            if self._bos_text and text.startswith(self._bos_text):
                text = text.removeprefix(self._bos_text)
        images = [url for m in turns for url in m.images]
        key: list[int | str] = list(self._bos)
        for i, part in enumerate(text.split(self._marker)):
            if i:
                key.append(hashlib.sha256(base64_of(images[i - 1]).encode()).hexdigest())
            key += self.tokenize(part, special=True)
        n_tokens = len(key) - len(images) + sum(self.image_tokens(url) for url in images)
        payload = MediaPrompt(text, tuple(base64_of(url) for url in images), tuple(key))
        stops = STOP_MARKERS if self.template is SEED else self._template_stops
        return Prompt(n_tokens, stops, payload, thinking, self._may_think and self.template is not SEED)

    def extend(self, prompt: Prompt, text: str) -> Prompt:
        """The model's answer so far after a rendered chat (see the protocol); what the template
        opened for the answer is where it goes on, so a template that opened a think block is past
        it: the text is the answer's."""
        if self.template is SEED:
            text = neutralise(text)
        if isinstance(prompt.payload, MediaPrompt):  # llama.cpp parses control tokens there: defused first
            added = self.tokenize(defuse(text), special=True)
            media = prompt.payload
            payload: object = replace(media, text=media.text + defuse(text), key=media.key + tuple(added))
        else:
            assert isinstance(prompt.payload, list)
            added = self.tokenize(text)  # never parsed for control tokens
            payload = prompt.payload + added
        return replace(prompt, n_tokens=prompt.n_tokens + len(added), payload=payload, thinking=False)

    def render_text(self, text: str) -> Prompt:
        tokens = self._bos + self.tokenize(text)  # never parsed for control tokens: a user's text
        return Prompt(len(tokens), (), tokens, may_think=False)

    def _is_plain(self, text: str) -> bool:
        """No control-token text in `text`: it tokenizes alike with special tokens parsed or not."""
        return self.tokenize(text, special=True) == self.tokenize(text)

    def _apply_template(self, chat: list[dict[str, str]]) -> str:
        try:
            rendered: str = self._post("/apply-template", {"messages": chat})["prompt"]
        except EngineError as exc:
            raise TemplateError(str(exc).removeprefix("llama.cpp /apply-template: ")) from None
        return rendered

    def _tokenize_apart(self, chat: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The template's text with special tokens parsed, and each message's text without: the
        template is rendered with a sentinel in place of each text, and cut at the sentinels."""
        texts = _texts(chat)
        numbered = iter(range(len(texts)))
        stand_ins = [{k: v if k == "role" else sentinel(next(numbered)) for k, v in m.items()} for m in chat]
        rendered = self._apply_template(stand_ins)
        tokens: list[int] = []
        for i, part in enumerate(SENTINEL.split(rendered)):
            if part:
                tokens += self.tokenize(texts[int(part)]) if i % 2 else self.tokenize(part, special=True)
        return rendered, tokens

    def render_chat(self, request: dict[str, Any]) -> Prompt:
        """An OpenAI chat request with tools, for llama.cpp's own chat path, which renders the
        tools into the template and parses the calls out of the answer. That path parses control
        tokens in any text it renders, so every text the client gave is defused first: message
        content (a string or parts), names, thoughts, earlier calls, and the tools themselves."""
        if not self._native_tools:
            chat, system = as_chat(request["messages"])
            tools = GrammarTools.of(request)
            if tools is not None:
                system = tools.system(system)
            rendered = self.render(chat, system)
            assert isinstance(rendered.payload, list)
            return replace(rendered, payload=ToolTurn(rendered.payload, tools))
        fields = ("messages", "tools", "tool_choice")
        body = {**request, **{k: defuse_all(request[k]) for k in fields if k in request}}
        try:
            counted = self._post("/v1/chat/completions/input_tokens", body)
        except EngineError as exc:
            raise TemplateError(str(exc).split(": ", 1)[-1]) from None
        return Prompt(int(counted["input_tokens"]), self._template_stops, body)

    # -- answers ---------------------------------------------------------------------------

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        usage = Usage(prompt_tokens=prompt.n_tokens, prompt_tokens_evaluated=prompt.n_tokens)
        tools = None
        key: Sequence[int | str] = ()  # what `Slots` knows the prompt by
        if isinstance(prompt.payload, dict):  # an OpenAI chat request (render_chat)
            request: dict[str, Any] = dict(prompt.payload)
        elif isinstance(prompt.payload, MediaPrompt):  # a chat with images (render)
            media = prompt.payload
            request = {"prompt": {"prompt_string": media.text, "multimodal_data": list(media.images)},
                       "cache_prompt": True}
            key = media.key
        elif isinstance(prompt.payload, ToolTurn):  # a chat with tools under our grammar (render_chat)
            request = {"prompt": prompt.payload.tokens, "cache_prompt": True}
            tools, key = prompt.payload.tools, prompt.payload.tokens
        else:
            request = {"prompt": prompt.payload, "cache_prompt": True}
            key = request["prompt"]
        request |= {
            "stream": True,
            "stream_options": {"include_usage": True},
            "return_progress": True,  # a chunk per batch of the prompt: Stop need not wait for all of it
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "repeat_penalty": sampling.repeat_penalty,
            "min_p": sampling.min_p,
            "stop": list(prompt.stops),
        }
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if tools is not None:
            request["grammar"] = tools.grammar(sampling.json_schema)
            return Generation(tools.pieces(self._run(request, usage, key)), usage)
        if sampling.json_schema is not None:
            request["json_schema"] = sampling.json_schema
        return Generation(self._run(request, usage, key), usage)

    def _run(self, request: dict[str, Any], usage: Usage, key: Sequence[int | str]) -> Generator[Piece, None, None]:
        """Run the request on a thread of its own (the native call blocks until the answer ends)
        and pass its chunks on; leaving early tells llama.cpp to cancel at its next token."""
        chunks: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        done = threading.Event()
        slot = request["id_slot"] = self._slots.take(key)

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return done.is_set() or self._closed.is_set()  # True: llama.cpp cancels the task

        def run() -> None:
            try:
                if "messages" in request:
                    stream_completion(self._http, request, on_chunk, CHAT)
                else:  # the OpenAI completions path takes no token ids with a projector
                    stream_completion(self._http, request, on_chunk, NATIVE if self.vision else COMPLETIONS)
            except Exception as exc:  # a fault (llama.cpp's process gone, say) ends this answer only
                chunks.put({"error": {"message": self._process.ended(DYING_S) or str(exc)}})
            finally:
                self._slots.give_back(slot)
                chunks.put(None)
                self._answers.discard(thread)

        if self._closed.is_set():
            raise EngineError("the llama.cpp engine is closed")
        thread = threading.Thread(target=run, name="llama.cpp answer", daemon=True)
        self._answers.add(thread)
        thread.start()
        calls: list[dict[str, Any]] = []  # llama.cpp streams a tool call in pieces: pass on whole ones
        try:
            while (chunk := chunks.get()) is not None:
                yield from self._read(chunk, usage, calls)
            for call in calls:
                yield ToolCall(call)
        finally:
            done.set()
            # llama.cpp lets go of the slot at its next token; until then the slot is not free,
            # so the scheduler must not count it free either
            thread.join()

    @staticmethod
    def _read(chunk: dict[str, Any], usage: Usage, calls: list[dict[str, Any]]) -> Generator[Piece, None, None]:
        error = chunk.get("error")
        if error is not None:
            raise EngineError(str(error.get("message", error)) if isinstance(error, dict) else str(error))
        progress = chunk.get("prompt_progress")
        if isinstance(progress, dict):
            processed, total, cache = (int(progress.get(key, 0)) for key in ("processed", "total", "cache"))
            yield Progress(processed, total, cache)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            # the chat path (tools) reports a thinking model's reasoning apart from its answer
            reasoning, text = delta.get("reasoning_content"), choice.get("text") or delta.get("content")
            if reasoning or text:
                usage.completion_tokens += 1
            if reasoning:
                yield Thought(reasoning)
            if text:
                yield Text(text)
            for call in delta.get("tool_calls") or ():
                add_tool_call(calls, call)
            if choice.get("finish_reason"):
                usage.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
        counts = chunk.get("usage")
        if isinstance(counts, dict):
            usage.prompt_tokens = int(counts.get("prompt_tokens", usage.prompt_tokens))
            usage.completion_tokens = int(counts.get("completion_tokens", usage.completion_tokens))
        timings = chunk.get("timings")
        if isinstance(timings, dict) and "prompt_n" in timings:
            usage.prompt_tokens_evaluated = int(timings["prompt_n"])
        if isinstance(timings, dict) and "draft_n" in timings:  # only where speculative decoding drafted
            usage.draft_tokens = int(timings["draft_n"])
            usage.draft_accepted = int(timings.get("draft_n_accepted", 0))

    def ended(self) -> str:
        return self._process.ended()

    def close(self) -> None:
        """Cancel running answers and free the model: its process ends (killed if it has not within
        CLOSE_TIMEOUT), and this returns once it is gone, its memory with it."""
        if self._closed.is_set():
            return
        self._closed.set()
        for thread in list(self._answers):  # each cancels at its next chunk
            thread.join(CLOSE_TIMEOUT)
        self._http.close()
        if not self._process.close(CLOSE_TIMEOUT):
            log.warning("llama.cpp did not stop within %s s; it was killed", CLOSE_TIMEOUT)
        shutil.rmtree(self._dir, ignore_errors=True)
