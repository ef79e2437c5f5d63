"""GGUF models through llama-cpp-python, with the KV cache kept for the longest shared prefix."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from client.protocol import SamplingParams
from server.engines.base import Generation, ModelLoadError
from server.engines.kv_states import SavedStates, common_prefix

DEFAULT_TEMPERATURE = 0.7


class LlamaCppEngine:
    name = "llama-cpp"

    def __init__(self, path: Path, n_ctx: int = 4096, threads: int = 0, max_tokens: int = 512):
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - a broken install, not a user error
            raise ModelLoadError("llama-cpp-python is not installed: run `make setup`") from exc
        self.model = path.name
        self.max_tokens = max_tokens
        try:
            self._llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads or max(1, os.cpu_count() or 1),
                verbose=False,
            )
        except ValueError as exc:
            raise ModelLoadError(
                f"llama.cpp cannot load {path}: the file is not a valid GGUF model or needs a newer"
                " llama-cpp-python (set MODEL_PATH to another file)"
            ) from exc
        self.n_ctx = self._llama.n_ctx()
        self._saved = SavedStates()

    def tokenize(self, text: str, bos: bool = False) -> list[int]:
        # special=False: text typed by a user must never become a control token
        return self._llama.tokenize(text.encode("utf-8"), add_bos=bos, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def reuse_prefix(self, tokens: list[int]) -> int:
        """Bring the KV cache to the longest known prefix of `tokens`; return its length."""
        live = self.cached_prefix(tokens)
        key, shared = self._saved.best_match(tokens)
        if shared > live and self._saved.restore(self._llama, key):
            return shared
        return live

    def cached_prefix(self, tokens: list[int]) -> int:
        """Tokens at the start of `tokens` whose KV state the model holds now."""
        held = self._llama._input_ids[: self._llama.n_tokens]
        return common_prefix(held, tokens[:-1])  # the last token is always evaluated

    def stream(self, prompt: str, params: SamplingParams, gen: Generation) -> Iterator[str]:
        tokens = self.tokenize(prompt, bos=True)
        gen.prompt_tokens = len(tokens)
        gen.prompt_tokens_evaluated = len(tokens) - self.reuse_prefix(tokens)
        chunks: Iterator[Any] = self._llama.create_completion(  # type: ignore[assignment]
            tokens,
            max_tokens=params.max_tokens or self.max_tokens,
            temperature=DEFAULT_TEMPERATURE if params.temperature is None else params.temperature,
            top_p=0.95 if params.top_p is None else params.top_p,
            top_k=40 if params.top_k is None else params.top_k,
            repeat_penalty=1.1 if params.repeat_penalty is None else params.repeat_penalty,
            seed=params.seed,
            stream=True,
        )
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                if choice["text"]:
                    gen.completion_tokens += 1
                    yield choice["text"]
                if choice["finish_reason"]:
                    gen.finish_reason = choice["finish_reason"]
        finally:
            chunks.close()  # type: ignore[attr-defined]
            self._saved.save(self._llama)
