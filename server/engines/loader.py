"""Pick and load the engine named by the settings (`auto`: by the model file's magic bytes)."""

from __future__ import annotations

from pathlib import Path

from server.engines.base import Engine, ModelLoadError
from server.settings import Settings


def resolve_model_path(settings: Settings) -> Path:
    if settings.model_path:
        return Path(settings.model_path).expanduser()
    from server.default_model import default_model_path

    return default_model_path()


def load_engine(settings: Settings) -> Engine:
    if settings.engine == "openai":
        from server.engines.openai_engine import OpenAIEngine

        return OpenAIEngine.connect(settings)
    path = resolve_model_path(settings)
    settings.model_path = str(path)
    kind = settings.engine
    if kind == "auto":
        from server.engines.magic import detect_format

        kind = "llama-cpp" if detect_format(path) == "gguf" else "ctransformers"
    elif not path.is_file():
        raise ModelLoadError(f"model file not found: {path} (set MODEL_PATH or --model to a model file)")
    if kind == "ctransformers":
        from server.engines.ctransformers_engine import CTransformersEngine

        return CTransformersEngine(path, settings.model_type, n_ctx=settings.n_ctx)
    from server.engines.llama_cpp_engine import LlamaCppEngine

    return LlamaCppEngine(path, settings.n_ctx, settings.threads, settings.max_tokens)
