"""Pick and load the engine named by the settings (`auto`: by the model file's magic bytes).

`plan_engine` does the quick checks (the file is there, its format is known) so that those
errors stop the program before it serves; the slow part, loading, is the callable it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from server.engines.base import Engine, ModelLoadError
from server.engines.projector import check_projector
from server.settings import Settings

EngineLoader = Callable[[], Engine]


def resolve_model_path(settings: Settings) -> Path:
    if settings.model_path:
        return Path(settings.model_path).expanduser()
    from server.default_model import default_model_path

    return default_model_path()


def plan_engine(settings: Settings) -> EngineLoader:
    if settings.engine == "openai":
        from server.engines.openai_engine import OpenAIEngine

        remote = OpenAIEngine.connect(settings)  # a quick check: an unreachable remote stops us here
        return lambda: remote
    path = resolve_model_path(settings)
    kind = settings.engine
    if kind == "auto":
        from server.engines.magic import detect_format

        kind = "llama-cpp" if detect_format(path) == "gguf" else "ctransformers"
    elif not path.is_file():
        raise ModelLoadError(f"model file not found: {path} (set MODEL_PATH or --model to a model file)")
    if kind == "ctransformers":
        from server.engines.ctransformers_engine import CTransformersEngine

        if settings.mmproj:
            raise ModelLoadError(f"MMPROJ: {path.name} is no GGUF model on llama.cpp, which alone takes images")

        return partial(CTransformersEngine, path, settings.model_type, n_ctx=settings.n_ctx, threads=settings.threads)
    from server.engines.llama_cpp_engine import LlamaCppEngine

    mmproj = Path(settings.mmproj).expanduser() if settings.mmproj else None
    if mmproj is not None:
        check_projector(mmproj)  # a quick check: a bad projector stops us before we serve
    return partial(
        LlamaCppEngine, path, n_ctx=settings.n_ctx, kv_pool=settings.kv_pool, parallel=settings.parallel,
        threads=settings.threads, n_gpu_layers=settings.n_gpu_layers, cache_ram_mib=settings.cache_ram_mib,
        prompt_template=settings.prompt_template, speculative=settings.speculative,
        speculative_draft=settings.speculative_draft, mmproj=mmproj,
    )


def plan_embedder(settings: Settings) -> EngineLoader:
    """The loader of MODEL_PATH's embedding instance (a GGUF file's, on llama.cpp)."""
    from server.engines.embedder import LlamaCppEmbedder

    path = resolve_model_path(settings)
    return partial(LlamaCppEmbedder, path, n_ctx=settings.n_ctx, threads=settings.threads,
                   n_gpu_layers=settings.n_gpu_layers)
