"""Vision projectors: the `mmproj*.gguf` file that turns an image into a language model's embeddings.

A model takes images when a projector goes with it: MMPROJ names MODEL_PATH's, and in MODELS_DIR
a projector pairs with the model whose name it shares (`mmproj-gemma-3-4b-it-f16.gguf` with
`gemma-3-4b-it-Q4_K_M.gguf`), or, where it shares none, as the folder's only projector with the
folder's only model left without one. A projector is never a model of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from server.engines.base import ModelLoadError
from server.engines.gguf import check_whole, read_header

PREFIX = "mmproj"
# what follows a projector's shared name: the precision its weights are stored in
_PRECISION = re.compile(r"[-_.]?(f16|f32|bf16|q8_0|q4_0|q4_k_m|fp16|fp32)$", re.IGNORECASE)
_SEPARATORS = "-_. "


def is_projector(path: Path) -> bool:
    return path.name.lower().startswith(PREFIX) and path.suffix.lower() == ".gguf"


def shared_name(projector: Path) -> str:
    """The model name a projector's file name carries, lower case ("" for `mmproj-F16.gguf`)."""
    name = projector.stem[len(PREFIX):].strip(_SEPARATORS)
    return _PRECISION.sub("", name).strip(_SEPARATORS).lower()


def pair(models: Iterable[Path], projectors: Iterable[Path]) -> dict[Path, Path]:
    """Each model's projector, among files of one folder (see the module's rule)."""
    models, projectors = list(models), list(projectors)
    paired: dict[Path, Path] = {}
    for model in models:
        named = [p for p in projectors if shared_name(p) and model.stem.lower().startswith(shared_name(p))]
        if named:  # the longest shared name is the closest: `gemma-3-4b-it` before `gemma-3`
            paired[model] = max(named, key=lambda p: len(shared_name(p)))
    unnamed = [p for p in projectors if p not in paired.values()]
    alone = [m for m in models if m not in paired]
    if len(projectors) == 1 and len(unnamed) == 1 and len(alone) == 1:
        paired[alone[0]] = unnamed[0]
    return paired


def check_projector(path: Path) -> None:
    """`ModelLoadError` unless `path` is a whole GGUF vision projector, naming what it is instead."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the vision projector {path}: {exc.strerror}") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{path} is not a vision projector: not a GGUF file")
    header = read_header(path)
    check_whole(path, header)
    arch = header.meta.get("general.architecture")
    if arch != "clip":
        raise ModelLoadError(f"{path} is not a vision projector: its architecture is {arch!r}, not 'clip'")
    if header.meta.get("clip.has_vision_encoder") is not True:
        raise ModelLoadError(f"{path} is a projector without a vision encoder (clip.has_vision_encoder)")
