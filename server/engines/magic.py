"""Tell a model file's format by its first four bytes.

GGUF files start with the ASCII bytes `GGUF`. The legacy GGML family starts with a little-endian
u32 whose hex spells the name, so the bytes on disk are reversed: `ggjt` (0x67676a74) is written
b"tjgg", `ggmf` b"fmgg", `ggla` b"algg" and unversioned `ggml` b"lmgg".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from server.engines.base import ModelLoadError

Format = Literal["gguf", "ggml"]

GGUF_MAGIC = b"GGUF"
# bytes on disk -> the name the magic spells (the u32 read little-endian)
GGML_MAGICS = {
    (0x67676A74).to_bytes(4, "little"): "ggjt",  # llama.cpp GGJT v1-v3 (mmap-able)
    (0x67676D66).to_bytes(4, "little"): "ggmf",  # llama.cpp versioned GGML
    (0x67676C61).to_bytes(4, "little"): "ggla",  # llama.cpp LoRA adapter
    (0x67676D6C).to_bytes(4, "little"): "ggml",  # unversioned GGML (llama, gpt2, mpt, ...)
}


def read_magic(path: str | os.PathLike[str]) -> bytes:
    """The first four bytes of the model file, or `ModelLoadError` saying what is wrong."""
    p = Path(path)
    hint = "set MODEL_PATH to a .gguf or GGML .bin model file"
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p} ({hint})")
    if p.is_dir():
        raise ModelLoadError(f"model path is a directory, not a file: {p} ({hint})")
    try:
        with p.open("rb") as f:
            return f.read(4)
    except OSError as e:
        raise ModelLoadError(
            f"cannot read model file {p}: {e.strerror or e} (check its permissions; {hint})"
        ) from e


def magic_name(path: str | os.PathLike[str]) -> str:
    """The magic's name: "gguf", or the GGML family member ("ggjt", "ggmf", "ggla", "ggml")."""
    magic = read_magic(path)
    if magic == GGUF_MAGIC:
        return "gguf"
    name = GGML_MAGICS.get(magic)
    if name is None:
        # its bytes are not quoted: the file may be anything a symlink points at
        what = "it starts with no model's magic bytes" if magic else "it is empty"
        raise ModelLoadError(
            f"not a GGUF or GGML model file: {path} ({what}; "
            "expected GGUF, ggjt, ggmf, ggla or ggml; download a .gguf or GGML .bin model "
            "and point MODEL_PATH at it)"
        )
    return name


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format: "gguf" for GGUF files, "ggml" for the legacy GGML family, else `ModelLoadError`."""
    return "gguf" if magic_name(path) == "gguf" else "ggml"
