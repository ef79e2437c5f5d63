"""Settings from the environment and `.env`, overridden by command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Literal

from dotenv import load_dotenv

EngineName = Literal["auto", "llama-cpp", "ctransformers", "openai"]
ENGINES: tuple[EngineName, ...] = ("auto", "llama-cpp", "ctransformers", "openai")


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


@dataclass
class Settings:
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "3000")))
    engine: str = field(default_factory=lambda: _env("ENGINE", "auto"))
    model_path: str = field(default_factory=lambda: _env("MODEL_PATH"))
    model_type: str = field(default_factory=lambda: _env("MODEL_TYPE", "llama"))
    n_ctx: int = field(default_factory=lambda: int(_env("N_CTX", "4096")))
    threads: int = field(default_factory=lambda: int(_env("THREADS", "0")))
    max_tokens: int = field(default_factory=lambda: int(_env("MAX_TOKENS", "512")))
    queue_size: int = field(default_factory=lambda: int(_env("QUEUE_SIZE", "32")))
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(1 << 20))))
    openai_base_url: str = field(default_factory=lambda: _env("OPENAI_BASE_URL"))
    openai_model: str = field(default_factory=lambda: _env("OPENAI_MODEL"))
    openai_api_key: str = field(default_factory=lambda: _env("OPENAI_API_KEY"))
    openai_timeout: float = field(default_factory=lambda: float(_env("OPENAI_TIMEOUT", "120")))
    openai_parallel: int = field(default_factory=lambda: int(_env("OPENAI_PARALLEL", "1")))
    api_key: str = field(default_factory=lambda: _env("API_KEY"))
    cors_origins: str = field(default_factory=lambda: _env("CORS_ORIGINS"))
    allow_insecure: bool = field(default_factory=lambda: _env("ALLOW_INSECURE") in ("1", "true", "yes"))
    dev: bool = field(default_factory=lambda: _env("DEV") in ("1", "true", "yes"))

    @classmethod
    def load(cls, env_file: str | None = ".env", **overrides: object) -> Settings:
        """Read `.env` (without overriding the real environment), then apply overrides."""
        if env_file:
            load_dotenv(env_file, override=False)
        settings = cls()
        names = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if key in names and value is not None:
                setattr(settings, key, value)
        if settings.engine not in ENGINES:
            raise ValueError(f"ENGINE must be one of {', '.join(ENGINES)}, not {settings.engine!r}")
        return settings
