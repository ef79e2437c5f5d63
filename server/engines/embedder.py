"""Embeddings of a GGUF model, through llama.cpp's own embedding route, in a child process of ours
reached over its private listener (server.engines.llama_process says why a child).

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

import httpx

from server.engines.base import EngineError, Generation, Prompt, PromptTemplate
from server.engines.gguf import read_header
from server.engines.llama_cpp_engine import (
    CLOSE_TIMEOUT,
    LISTENER,
    LlamaCppEngine,
    make_socket_dir,
    serve_privately,
    socket_in,
)
from server.engines.llama_process import DYING_S, LlamaProcess
from server.prompt import defuse
from server.sampling import Sampling
from wire.types import Message

L2 = 2  # llama.cpp's embd_normalize: the Euclidean norm
ROUTE = "/v1/embeddings"
TOO_LONG = re.compile(r"input \((\d+) tokens\) is too large")


class InputTooLong(EngineError):
    """An input does not fit the embedding instance's window."""


def embedding_params(
    *, model: str, own_pooling: bool, n_ctx: int, threads: int, n_gpu_layers: int, folder: str, key: str
) -> Any:
    """llama.cpp's parameters for an embedding instance; called in the child process that loads it.
    `own_pooling`: the model's header names its pooling (an embedding model's), else tokens' states
    are averaged."""
    import xllamacpp

    pooling = xllamacpp.llama_pooling_type
    params = xllamacpp.CommonParams()
    params.model.path = model
    params.embedding = True
    params.pooling_type = pooling.LLAMA_POOLING_TYPE_UNSPECIFIED if own_pooling else pooling.LLAMA_POOLING_TYPE_MEAN
    params.embd_normalize = L2
    params.n_ctx = n_ctx
    params.n_parallel = 1
    # an input is read in one batch: any input that fits the window fits the batch
    params.n_batch = params.n_ubatch = n_ctx
    params.n_gpu_layers = n_gpu_layers
    serve_privately(params, folder, key, threads)
    return params


class LlamaCppEmbedder:
    """An embedding instance. It stands in the model list as an engine, so that loading, unloading
    and queue places are the chat engines' own; it writes no answers."""

    name = "llama-cpp embeddings"
    supports: frozenset[str] = frozenset()
    parallel = 1
    template = PromptTemplate("none", "embeddings take no chat template")

    def __init__(self, path: Path, *, n_ctx: int, threads: int, n_gpu_layers: int) -> None:
        self.model = path.name
        self.n_ctx = self.capacity = n_ctx
        meta = read_header(path).meta
        own = f"{meta.get('general.architecture')}.pooling_type" in meta  # an embedding model's
        self._dir = make_socket_dir()
        key = secrets.token_urlsafe(32)
        self._process = LlamaProcess(embedding_params, model=str(path), own_pooling=own, n_ctx=n_ctx,
                                     threads=threads, n_gpu_layers=n_gpu_layers, folder=self._dir, key=key)
        if not self._process.ok:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise LlamaCppEngine._load_error(path, self._process.said, n_ctx, self._process.version)
        # an input as long as the window may take a while to read on a CPU: no timeout
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=socket_in(self._dir)), base_url=LISTENER,
                                  headers={"Authorization": f"Bearer {key}"}, timeout=None)
        self._closed = threading.Event()

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One vector per text, in order, and the tokens read. Control-token text in a text stays
        text, as in a chat's messages."""
        if self._closed.is_set():
            raise EngineError("the embedding instance is closed")
        try:
            result: dict[str, Any] = self._http.post(ROUTE, json={"input": [defuse(t) for t in texts]}).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(self._process.ended(DYING_S) or f"llama.cpp embeddings: {exc}") from exc
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

    def ended(self) -> str:
        return self._process.ended()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._http.close()
        self._process.close(CLOSE_TIMEOUT)
        shutil.rmtree(self._dir, ignore_errors=True)
