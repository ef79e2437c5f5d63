"""The ctransformers engine: legacy GGML files (`ggjt` and friends) such as the seed's
`Wizard-Vicuna-7B-Uncensored.ggmlv3.q8_0.bin`, and llama GGUF files.

ctransformers 0.2.27 is used through its low-level calls, because its convenience layer has
traps that kill the process:

* `LLM.tokenize()` sizes the token buffer by *characters* (`len(text) + 1`), but byte-fallback
  tokenizers need up to one token per *byte* (CJK: 3, emoji: 4; GGUF also writes each space as
  the 3-byte `▁`), so the C side writes past the buffer and glibc aborts. We call the C
  tokenizer with a buffer sized for the worst case (`_token_capacity`).
* Some bad inputs crash inside the native loader instead of failing: a truncated GGUF file and
  a GGUF file loaded with any model type but `llama` segfault, `falcon` on a `ggjt` file calls
  `exit()`. We check the file in Python first (magic, GGUF header and tensor extents, model type)
  and turn every failure into `ModelLoadError`; the loader's own words (printed on the C
  stdout/stderr and otherwise lost) are captured and put in the message.
* Finding the CPU-specific library probes the CPU (> 1 s per load) unless `lib` is given: we
  resolve it once per process from /proc/cpuinfo.
* Evaluating past the context window writes past the KV cache: we never do (the prompt must fit,
  generation ends with "length" at the window's end).

Not thread-safe: one generation at a time, driven from one thread at a time (the server's
scheduler runs it on a single worker thread). A second concurrent `stream` raises `EngineError`;
every native call is also serialised by a lock, so `count_tokens` may be called from another
thread while a generation runs (it waits for the current native call, a few milliseconds).
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import os
import platform
import threading
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from server.engines.base import EngineError, Generation, ModelLoadError, Prompt, Text, Usage
from server.engines.gguf import read_header
from server.engines.magic import magic_name
from server.engines.native import capture_native_output
from server.prompt import SEED, STOP_MARKERS, build_prompt, neutralise
from server.sampling import Sampling
from wire.types import Message

REPEAT_LAST_N = 64
PROMPT_BATCH = 512

FIX_ENGINE = "or use ENGINE=llama-cpp for GGUF files"


@functools.cache
def resolve_lib() -> str:
    """ctransformers' `lib` argument, found once per process (its own probe takes > 1 s)."""
    forced = os.environ.get("CT_LIB")
    if forced:
        return forced
    if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
        try:
            with open("/proc/cpuinfo") as f:
                flags: set[str] = set()
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        break
        except OSError:
            flags = set()
        if "avx2" in flags:
            return "avx2"
        if "avx" in flags and "f16c" in flags:
            return "avx"
        if flags:
            return "basic"
    from ctransformers.lib import find_library  # the slow probe, once

    found: str = find_library()
    return found


# --- GGUF checks ctransformers needs ----------------------------------------------------------

# the ggml tensor types ctransformers 0.2.27 knows (f32, f16, q4_0 to q8_1, the k-quants)
CTRANSFORMERS_TYPES = frozenset({0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})


def check_gguf(path: str) -> dict[str, Any]:
    """Check that a GGUF file is whole and that every tensor is of a type ctransformers knows
    (it crashes otherwise); `ModelLoadError` if not. Returns the metadata scalars."""
    header = read_header(path)
    size = os.path.getsize(path)
    for tensor in header.tensors:
        if tensor.type not in CTRANSFORMERS_TYPES:
            raise ModelLoadError(
                f"cannot load {path}: tensor {tensor.name} has ggml type {tensor.type}, newer than"
                f" ctransformers 0.2.27 reads ({FIX_ENGINE})"
            )
        if header.data_start + tensor.offset + tensor.n_bytes > size:
            raise ModelLoadError(
                f"cannot load {path}: tensor {tensor.name} ends past the end of the file "
                f"({size} bytes; truncated download? download it again)"
            )
    return header.meta


# --- the engine ----------------------------------------------------------------------------------


class CTransformersEngine:
    """A GGML or llama GGUF model loaded once with ctransformers (see the module doc)."""

    name = "ctransformers"
    parallel = 1
    supports: frozenset[str] = frozenset()
    template = SEED

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        model_type: str,
        n_ctx: int,
        threads: int = 0,
        lib: str | None = None,
    ) -> None:
        path = str(model_path)
        self.model_path = path
        self.model = Path(path).name
        self.model_type = model_type.strip().lower()
        self.threads = threads or os.cpu_count() or 1
        self._busy = threading.Lock()  # one generation at a time
        self._native = threading.Lock()  # one native call at a time
        self._past: list[int] = []  # tokens whose keys/values are in the model's cache

        magic = magic_name(path)
        if magic == "gguf":
            if self.model_type != "llama":
                raise ModelLoadError(
                    f"cannot load {path} with MODEL_TYPE={self.model_type}: ctransformers reads "
                    f"GGUF files only as MODEL_TYPE=llama (other types crash it); set "
                    f"MODEL_TYPE=llama, {FIX_ENGINE}"
                )
            meta = check_gguf(path)
            arch = meta.get("general.architecture")
            if arch != "llama":
                raise ModelLoadError(
                    f"cannot load {path}: its architecture is {arch!r} and ctransformers reads "
                    f"only llama GGUF files; use ENGINE=llama-cpp for this model"
                )
        elif magic in ("ggjt", "ggmf", "ggla") and self.model_type != "llama":
            raise ModelLoadError(
                f"cannot load {path} with MODEL_TYPE={self.model_type}: its magic is "
                f"'{magic}', a llama.cpp format; set MODEL_TYPE=llama"
            )
        if n_ctx < 8:
            raise ModelLoadError(f"N_CTX={n_ctx} is too small for {path}; use 512 or more")

        from ctransformers import AutoModelForCausalLM

        try:
            with capture_native_output() as said:
                llm = AutoModelForCausalLM.from_pretrained(
                    path,
                    model_type=self.model_type,
                    lib=lib or resolve_lib(),
                    threads=self.threads,
                    context_length=n_ctx,
                    batch_size=PROMPT_BATCH,
                )
        except (RuntimeError, ValueError, OSError) as e:
            native = " ".join(" ".join(said).split())[-400:]
            detail = f" (the loader said: {native})" if native else ""
            raise ModelLoadError(
                f"ctransformers could not load {path} as MODEL_TYPE={self.model_type}{detail}; "
                f"check MODEL_TYPE (llama, gpt2, gptj, gpt_neox, mpt, falcon, starcoder, ...) "
                f"and that the file is complete, {FIX_ENGINE}"
            ) from e
        self._llm: Any = llm
        self._lib = llm._lib
        self._ptr = llm._llm
        self.n_ctx = self.capacity = int(self._lib.ctransformers_llm_context_length(self._ptr))
        self.vocab_size = int(self._lib.ctransformers_llm_vocab_size(self._ptr))
        self.architecture = llm.model_type
        self.add_bos = self.architecture == "llama"

    # -- tokens --

    @staticmethod
    def _token_capacity(data: bytes) -> int:
        # Every token covers at least one byte of the text the tokenizer sees; that text may
        # be longer than ours: a prefix space plus each space escaped as the 3-byte `▁`.
        return 3 * len(data) + 8

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        """Token ids of `text`, safe for any text (see the module doc)."""
        # The C call takes a NUL-terminated string; lone surrogates cannot be encoded.
        self._check_open()
        data = text.replace("\x00", "").encode("utf-8", "replace")
        capacity = self._token_capacity(data)
        buf = (ctypes.c_int * capacity)()
        with self._native:
            n = int(self._lib.ctransformers_llm_tokenize(self._ptr, data, add_bos, buf))
        if n > capacity:  # cannot happen for any tokenizer ctransformers ships
            os.abort()
        return list(buf[:n])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, token: int) -> bytes:
        with self._native:
            piece: bytes | None = self._lib.ctransformers_llm_detokenize(self._ptr, token)
        return piece or b""

    # -- generation --

    def _eval(self, tokens: list[int], n_past: int) -> None:
        arr = (ctypes.c_int * len(tokens))(*tokens)
        with self._native:
            ok = self._lib.ctransformers_llm_batch_eval(
                self._ptr, arr, len(tokens), n_past, PROMPT_BATCH, self.threads
            )
        if not ok:
            raise EngineError("the model failed to evaluate the prompt")

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        tokens = self.tokenize(build_prompt(messages, system), add_bos=self.add_bos)
        return Prompt(len(tokens), STOP_MARKERS, tokens, may_think=False)  # the seed's prompt: no thoughts

    def extend(self, prompt: Prompt, text: str) -> Prompt:
        """The model's answer so far after a rendered chat (see the protocol)."""
        assert isinstance(prompt.payload, list)
        added = self.tokenize(neutralise(text))
        return replace(prompt, n_tokens=prompt.n_tokens + len(added), payload=prompt.payload + added)

    def render_text(self, text: str) -> Prompt:
        tokens = self.tokenize(text, add_bos=self.add_bos)
        return Prompt(len(tokens), (), tokens, may_think=False)

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        """Answer in whole UTF-8 characters (see the protocol); one answer at a time."""
        assert isinstance(prompt.payload, list)
        usage = Usage(prompt_tokens=len(prompt.payload))
        return Generation(self._one_at_a_time(prompt.payload, sampling, usage), usage)

    def _one_at_a_time(self, tokens: list[int], sampling: Sampling, usage: Usage) -> Generator[Text, None, None]:
        if not self._busy.acquire(blocking=False):
            raise EngineError("the ctransformers engine runs one generation at a time")
        try:
            yield from self._generate(tokens, sampling, usage)
        finally:
            self._busy.release()

    def _generate(self, tokens: list[int], sampling: Sampling, usage: Usage) -> Generator[Text, None, None]:
        if not tokens:
            raise EngineError("the prompt is empty")
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise EngineError(
                f"the prompt takes {len(tokens)} tokens and the context window holds "
                f"{self.n_ctx}; shorten the conversation or raise N_CTX"
            )
        limit = min(sampling.max_tokens, room)
        top_k, top_p, temperature = sampling.top_k, sampling.top_p, sampling.temperature
        seed = -1 if sampling.seed is None else sampling.seed
        if top_k <= 0:
            top_k = self.vocab_size
        if temperature <= 0:  # greedy
            top_k, temperature = 1, 1.0

        # Reuse the cached keys/values of the longest common prefix (at least one token is
        # evaluated, to get fresh logits).
        keep = 0
        most = min(len(tokens) - 1, len(self._past))
        while keep < most and tokens[keep] == self._past[keep]:
            keep += 1
        usage.prompt_tokens_evaluated = len(tokens) - keep
        self._past = tokens[:keep]
        self._eval(tokens[keep:], keep)
        self._past = list(tokens)

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        usage.finish_reason = "length"
        while True:
            last = self._past[-REPEAT_LAST_N:]
            arr = (ctypes.c_int * len(last))(*last)
            with self._native:
                token = int(
                    self._lib.ctransformers_llm_sample(
                        self._ptr, arr, len(last), top_k, top_p, temperature, sampling.repeat_penalty, seed
                    )
                )
                eos = bool(self._lib.ctransformers_llm_is_eos_token(self._ptr, token))
            if eos:
                usage.finish_reason = "stop"
                return
            usage.completion_tokens += 1
            text = decoder.decode(self.detokenize(token))  # holds an incomplete character
            if text:
                yield Text(text)
            if usage.completion_tokens >= limit:
                return  # "length"; an incomplete last character is dropped, never U+FFFD
            self._eval([token], len(self._past))
            self._past.append(token)

    def _check_open(self) -> None:
        if self._llm is None:
            raise EngineError("the ctransformers engine is closed")

    def close(self) -> None:
        """Free the model now (otherwise done when the engine is garbage collected)."""
        with self._native:
            self._llm = None  # ctransformers' LLM frees the native model when collected
            self._ptr = None
