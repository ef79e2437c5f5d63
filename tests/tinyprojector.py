"""A tiny vision projector (`mmproj`) GGUF with random weights, written with numpy in milliseconds.

It is llama.cpp's `gemma3` projector type (tools/mtmd/clip.cpp): a SigLIP vision tower, then an
average pool over the patch grid, an RMS norm and a projection into the language model's
embedding width. The answers it leads to are noise; its path through llama.cpp, its token counts
and the prompt cache are real.

Sizes: a 64x64 image in 8x8 patches is an 8x8 grid, pooled by `MERGE` (2) into 4x4 = 16 image
tokens; llama.cpp wraps them in `<start_of_image>` and `<end_of_image>`, one token each in
Gemma's vocabulary, so an image costs `IMAGE_TOKENS` (18) tokens of the default model's context.
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import numpy as np

from tests.tinymodels import GGUF_ARR, GGUF_BOOL, GGUF_F32, GGUF_STR, GGUF_U32, _gguf_kv, _gguf_str, _pad

GEMMA_N_EMBD = 640  # the default model's (Gemma 3 270M) embedding width: the projection's output
IMAGE_SIZE, PATCH, MERGE = 64, 8, 2
IMAGE_TOKENS = (IMAGE_SIZE // PATCH // MERGE) ** 2 + 2
N_EMBD, N_HEAD, N_FF, N_LAYER = 32, 2, 64, 1


def _f32_array(key: str, values: list[float]) -> bytes:
    return _gguf_str(key) + struct.pack(f"<IIQ{len(values)}f", GGUF_ARR, GGUF_F32, len(values), *values)


def write_projector(path: str | Path, n_text: int = GEMMA_N_EMBD, seed: int = 0) -> Path:
    """Write the projector for a language model `n_text` wide; return its path."""
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones(N_EMBD, np.float32)
    # numpy shapes: ggml's dimensions reversed (a matrix's rows are its output width)
    tensors = {
        "v.patch_embd.weight": weights(N_EMBD, 3, PATCH, PATCH),
        "v.patch_embd.bias": weights(N_EMBD),
        "v.position_embd.weight": weights((IMAGE_SIZE // PATCH) ** 2, N_EMBD),
        "v.post_ln.weight": ones, "v.post_ln.bias": weights(N_EMBD),
        "mm.input_projection.weight": weights(N_EMBD, n_text),
        "mm.soft_emb_norm.weight": ones,
    }
    for i in range(N_LAYER):
        block = f"v.blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"{block}{name}.weight"], tensors[f"{block}{name}.bias"] = weights(N_EMBD, N_EMBD), weights(N_EMBD)
        tensors[f"{block}ffn_up.weight"], tensors[f"{block}ffn_up.bias"] = weights(N_FF, N_EMBD), weights(N_FF)
        tensors[f"{block}ffn_down.weight"], tensors[f"{block}ffn_down.bias"] = weights(N_EMBD, N_FF), weights(N_EMBD)
        for norm in ("ln1", "ln2"):
            tensors[f"{block}{norm}.weight"], tensors[f"{block}{norm}.bias"] = ones, weights(N_EMBD)
    kvs = [
        _gguf_kv("general.architecture", GGUF_STR, "clip"),
        _gguf_kv("general.alignment", GGUF_U32, 32),
        _gguf_kv("clip.projector_type", GGUF_STR, "gemma3"),
        _gguf_kv("clip.has_vision_encoder", GGUF_BOOL, True),
        _gguf_kv("clip.use_gelu", GGUF_BOOL, True),
        _gguf_kv("clip.vision.embedding_length", GGUF_U32, N_EMBD),
        _gguf_kv("clip.vision.feed_forward_length", GGUF_U32, N_FF),
        _gguf_kv("clip.vision.block_count", GGUF_U32, N_LAYER),
        _gguf_kv("clip.vision.attention.head_count", GGUF_U32, N_HEAD),
        _gguf_kv("clip.vision.attention.layer_norm_epsilon", GGUF_F32, 1e-6),
        _gguf_kv("clip.vision.projection_dim", GGUF_U32, n_text),
        _gguf_kv("clip.vision.image_size", GGUF_U32, IMAGE_SIZE),
        _gguf_kv("clip.vision.patch_size", GGUF_U32, PATCH),
        _gguf_kv("clip.vision.projector.scale_factor", GGUF_U32, MERGE),
        _f32_array("clip.vision.image_mean", [0.5, 0.5, 0.5]),
        _f32_array("clip.vision.image_std", [0.5, 0.5, 0.5]),
    ]
    infos, offset = [], 0
    for name, a in tensors.items():
        infos.append(_gguf_str(name) + struct.pack(f"<I{a.ndim}QIQ", a.ndim, *reversed(a.shape), 0, offset))
        offset += -(-a.nbytes // 32) * 32
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kvs)))
        f.write(b"".join(kvs) + b"".join(infos))
        for a in tensors.values():
            _pad(f)
            f.write(a.tobytes())
        _pad(f)
    return Path(path)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG."""
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def data_url(image: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(image).decode()}"
