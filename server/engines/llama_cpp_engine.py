"""GGUF models on llama.cpp's own server engine, in our process, through `xllamacpp`.

llama.cpp runs continuous batching over `parallel` slots that share one unified KV cache pool,
keeps each slot's prompt cache, and saves idle slots to a host-RAM prompt cache from which any
chat's prefix is restored into any slot. We drive it through `Server.handle_completions` with a
prompt we tokenize ourselves, so that text a user types never becomes a control token: llama.cpp
parses special tokens in whatever text it is given, chat messages included.

With a chat template, llama.cpp renders the chat with each message's text replaced by a sentinel;
the template's own text is then tokenized with special tokens parsed, and each message's text
without. The tokenizer and the template renderer are llama.cpp's, reached over its HTTP listener,
which listens on a Unix socket in a private directory and wants a key only this process knows.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import httpx

from client.protocol import Message
from server.engines.base import Answer, EngineError, ModelLoadError, Prompt, TemplateError, TemplateInfo, Usage
from server.engines.gguf import read_header
from server.engines.native import capture_native_output
from server.prompt import SEED, STOP_MARKERS, build_prompt
from server.sampling import Sampling

log = logging.getLogger("snake_llama")

# Texts that llama.cpp treats as end of turn or that open a turn, in the vocabularies we know.
# Those that are special tokens of the loaded model are the stop filter's safety net: the model
# could still spell one out of ordinary tokens, and it must never show.
TURN_MARKERS = (
    "<end_of_turn>", "<start_of_turn>", "<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|start_header_id|>",
    "<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<|eom_id|>",
    "[INST]", "[/INST]", "<|return|>", "<|turn>", "<turn|>", "<eos>", "<|end▁of▁sentence|>",
)
SENTINEL = re.compile("\ue000(\\d+)\ue001")  # private-use characters: no template writes them
CLOSE_TIMEOUT = 10.0


def sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


def merge_turns(messages: Sequence[Message]) -> list[Message]:
    """Consecutive messages of one side as one turn: chat templates require roles to alternate."""
    merged: list[Message] = []
    for m in messages:
        if merged and merged[-1].user == m.user:
            merged[-1] = Message(m.user, f"{merged[-1].text}\n\n{m.text}")
        else:
            merged.append(m)
    return merged


class LlamaCppEngine:
    name = "llama-cpp"

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
    ) -> None:
        import xllamacpp

        self.model = path.name
        self.n_ctx = n_ctx
        self.capacity = kv_pool
        self.parallel = parallel
        meta = read_header(path).meta
        trained = meta.get(f"{meta.get('general.architecture')}.context_length")
        if isinstance(trained, int) and n_ctx > trained:
            raise ModelLoadError(
                f"N_CTX={n_ctx} is more than {path.name} was trained for ({trained} tokens): set N_CTX to {trained} or less"
            )
        if n_ctx > kv_pool:
            raise ModelLoadError(f"N_CTX={n_ctx} is more than KV_POOL={kv_pool}: one chat must fit in the pool")
        jinja, self.template = self._pick_template(path, meta, prompt_template)
        self._dir = tempfile.mkdtemp(prefix="snake_llama-")  # mode 0700: only we can reach the socket
        key = secrets.token_urlsafe(32)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = kv_pool  # one unified pool; each slot may use up to n_ctx of it (our fitting)
        params.kv_unified = True
        params.n_parallel = parallel
        params.swa_full = True  # sliding-window models (Gemma 3) keep whole prefixes reusable
        params.cache_ram_mib = cache_ram_mib
        params.n_gpu_layers = n_gpu_layers
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or os.cpu_count() or 1
        params.chat_template = jinja or ""
        params.hostnames = [os.path.join(self._dir, "llama.sock")]
        params.api_keys = [key]
        params.endpoint_slots = False
        params.warmup = False
        params.verbosity = 1  # errors only: llama.cpp logs every request at info
        try:
            with capture_native_output() as said:
                self._server = xllamacpp.Server(params)
        except RuntimeError:
            shutil.rmtree(self._dir, ignore_errors=True)
            words = " ".join(" ".join(said).split())[-300:]
            raise ModelLoadError(
                f"llama.cpp could not load {path} (it said: {words or 'nothing'}); check that the file is a"
                f" complete GGUF model of an architecture xllamacpp {xllamacpp.__version__} knows"
            ) from None
        socket = params.hostnames[0]
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket), base_url="http://llama.cpp",
            headers={"Authorization": f"Bearer {key}"}, timeout=60,
        )
        self._closed = threading.Event()
        self._answers: set[threading.Thread] = set()
        self._bos = self.tokenize("", special=True, add_special=True)[:1]
        markers = [m for m in TURN_MARKERS if len(self.tokenize(m, special=True)) == 1]
        self._template_stops = tuple(markers)

    @staticmethod
    def _pick_template(path: Path, meta: dict[str, Any], choice: str) -> tuple[str | None, TemplateInfo]:
        """The Jinja source to give llama.cpp (None: the model's own, or the seed's template when
        the answer is `SEED`) and how to name it."""
        if choice == "seed":
            return None, SEED
        if choice == "auto":
            if isinstance(meta.get("tokenizer.chat_template"), str):
                return None, TemplateInfo("the model's own chat template", f"{path.name}: tokenizer.chat_template")
            return None, SEED
        file = Path(choice).expanduser()
        return file.read_text(), TemplateInfo(file.name, str(file))

    # -- tokens and templates --------------------------------------------------------------

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        response = self._http.post(route, json=body)
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
        if self.template is SEED:
            tokens = self._bos + self.tokenize(build_prompt(messages, system))
            return Prompt(len(tokens), STOP_MARKERS, tokens)
        texts = [system] if system and system.strip() else []
        chat = [{"role": "system", "content": sentinel(0)}] if texts else []
        for m in merge_turns(messages):
            chat.append({"role": "user" if m.user else "assistant", "content": sentinel(len(texts))})
            texts.append(m.text.strip())
        try:
            rendered: str = self._post("/apply-template", {"messages": chat})["prompt"]
        except EngineError as exc:
            raise TemplateError(str(exc).removeprefix("llama.cpp /apply-template: ")) from None
        tokens: list[int] = []
        for i, part in enumerate(SENTINEL.split(rendered)):
            if part:
                tokens += self.tokenize(texts[int(part)]) if i % 2 else self.tokenize(part, special=True)
        if self._bos and tokens[:1] != self._bos:
            tokens = self._bos + tokens
        return Prompt(len(tokens), self._template_stops, tokens)

    # -- answers ---------------------------------------------------------------------------

    def stream(self, prompt: Prompt, sampling: Sampling) -> Answer:
        assert isinstance(prompt.payload, list)
        usage = Usage(prompt_tokens=prompt.n_tokens, prompt_tokens_evaluated=prompt.n_tokens)
        request: dict[str, Any] = {
            "prompt": prompt.payload,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "repeat_penalty": sampling.repeat_penalty,
            "stop": list(prompt.stops),
            "cache_prompt": True,
        }
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        return Answer(self._relay(request, usage), usage)

    def _relay(self, request: dict[str, Any], usage: Usage) -> Generator[str, None, None]:
        """Run the request on a thread of its own (the native call blocks until the answer ends)
        and pass its chunks on; leaving early tells llama.cpp to cancel at its next token."""
        chunks: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        done = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return done.is_set() or self._closed.is_set()  # True: llama.cpp cancels the task

        def run() -> None:
            try:
                self._server.handle_completions(request, on_chunk)
            except Exception as exc:  # a fault in the native call ends this answer only
                chunks.put({"error": {"message": str(exc)}})
            finally:
                chunks.put(None)
                self._answers.discard(thread)

        if self._closed.is_set():
            raise EngineError("the llama.cpp engine is closed")
        thread = threading.Thread(target=run, name="llama.cpp answer", daemon=True)
        self._answers.add(thread)
        thread.start()
        try:
            while (chunk := chunks.get()) is not None:
                yield from self._read(chunk, usage)
        finally:
            done.set()

    @staticmethod
    def _read(chunk: dict[str, Any], usage: Usage) -> Generator[str, None, None]:
        error = chunk.get("error")
        if error is not None:
            raise EngineError(str(error.get("message", error)) if isinstance(error, dict) else str(error))
        for choice in chunk.get("choices") or ():
            if choice.get("text"):
                usage.completion_tokens += 1
                yield choice["text"]
            if choice.get("finish_reason"):
                usage.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
        counts = chunk.get("usage")
        if isinstance(counts, dict):
            usage.prompt_tokens = int(counts.get("prompt_tokens", usage.prompt_tokens))
            usage.completion_tokens = int(counts.get("completion_tokens", usage.completion_tokens))
        timings = chunk.get("timings")
        if isinstance(timings, dict) and "prompt_n" in timings:
            usage.prompt_tokens_evaluated = int(timings["prompt_n"])

    def close(self) -> None:
        """Cancel running answers and free the model. The native shutdown joins llama.cpp's
        threads; it runs on a thread of its own so that a stuck one cannot hang us."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._http.close()
        server = self.__dict__.pop("_server")
        for thread in list(self._answers):
            thread.join(CLOSE_TIMEOUT)

        def free() -> None:
            nonlocal server
            del server

        closer = threading.Thread(target=free, name="llama.cpp close", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT)
        if closer.is_alive():
            log.warning("llama.cpp did not stop within %s s; leaving it to the process exit", CLOSE_TIMEOUT)
        shutil.rmtree(self._dir, ignore_errors=True)
