"""Embeddings of a GGUF model, through llama.cpp's own embedding path (`Server.handle_embeddings`).

llama.cpp serves embeddings from an instance loaded for them alone (a chat instance cannot give
them), so this is one more loaded model: the model list counts it against MAX_LOADED_MODELS. An
embedding model's header names its pooling; a chat model's does not, and its tokens' states
are averaged. Every vector is L2-normalised, as OpenAI's are, so a dot product is a cosine.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.engines.base import EngineError, Generation, Prompt, PromptTemplate
from server.engines.gguf import read_header
from server.engines.llama_cpp_engine import LlamaCppEngine, make_socket_dir, serve_privately
from server.engines.native import capture_native_output
from server.prompt import defuse
from server.sampling import Sampling
from wire.types import Message

L2 = 2  # llama.cpp's embd_normalize: the Euclidean norm
TOO_LONG = re.compile(r"input \((\d+) tokens\) is too large")


class InputTooLong(EngineError):
    """An input does not fit the embedding instance's window."""


class LlamaCppEmbedder:
    """An embedding instance. It stands in the model list as an engine, so that loading, unloading
    and queue places are the chat engines' own; it writes no answers."""

    name = "llama-cpp embeddings"
    supports: frozenset[str] = frozenset()
    parallel = 1
    template = PromptTemplate("none", "embeddings take no chat template")

    def __init__(self, path: Path, *, n_ctx: int, threads: int, n_gpu_layers: int) -> None:
        import xllamacpp

        self.model = path.name
        self.n_ctx = self.capacity = n_ctx
        meta = read_header(path).meta
        pooling = xllamacpp.llama_pooling_type
        own = f"{meta.get('general.architecture')}.pooling_type" in meta  # an embedding model's
        self._dir = make_socket_dir()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.embedding = True
        params.pooling_type = pooling.LLAMA_POOLING_TYPE_UNSPECIFIED if own else pooling.LLAMA_POOLING_TYPE_MEAN
        params.embd_normalize = L2
        params.n_ctx = n_ctx
        params.n_parallel = 1
        # an input is read in one batch: any input that fits the window fits the batch
        params.n_batch = params.n_ubatch = n_ctx
        params.n_gpu_layers = n_gpu_layers
        serve_privately(params, self._dir, secrets.token_urlsafe(32), threads)  # its listener goes unused
        try:
            with capture_native_output() as said:
                self._server = xllamacpp.Server(params)
        except RuntimeError:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise LlamaCppEngine._load_error(path, "".join(said), n_ctx, xllamacpp.__version__) from None
        self._closed = threading.Event()

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One vector per text, in order, and the tokens read. Control-token text in a text stays
        text, as in a chat's messages."""
        if self._closed.is_set():
            raise EngineError("the embedding instance is closed")
        try:
            result: dict[str, Any] = self._server.handle_embeddings({"input": [defuse(t) for t in texts]})
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"llama.cpp embeddings: {exc}") from exc
        error = result.get("error")
        if error is not None:
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if long := TOO_LONG.search(message):
                raise InputTooLong(f"an input is {long[1]} tokens; this model's window holds {self.n_ctx}")
            raise EngineError(f"llama.cpp embeddings: {message}")
        rows = sorted(result["data"], key=lambda row: int(row["index"]))
        return [list(row["embedding"]) for row in rows], int(result["usage"]["prompt_tokens"])

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        raise EngineError("an embedding instance writes no answers")

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        raise EngineError("an embedding instance writes no answers")

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        server = self.__dict__.pop("_server")
        del server
        shutil.rmtree(self._dir, ignore_errors=True)
