"""Read a GGUF file's header: its metadata scalars and its tensor table, without loading it.

Engines use it to check a file before native code sees it (a truncated file can crash a loader)
and to read facts such as the model's own chat template. The server reads the header of every
file in MODELS_DIR when it lists them, so a header is bounded (`MAX_HEADER`): a crafted file can
cost at most that much reading, and arrays, which only native code needs, are skipped unread.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from server.engines.base import ModelLoadError

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
VERSIONS = (1, 2, 3)
MAX_STRING = 1 << 20
MAX_ITEMS = 1 << 24
# Real headers hold a vocabulary and its merges: 6.5 MB for Gemma 3's 262k tokens, a few times
# that for the largest vocabularies. Past this a header is refused, whatever it holds.
MAX_HEADER = 32 << 20
_CHUNK = 1 << 20  # bytes read at a time
# A model split over several files (llama.cpp's gguf-split naming): loaded through its first part.
SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<parts>\d{5})\.gguf$", re.IGNORECASE)


# llama.cpp's `general.file_type` (enum llama_ftype): the quantization most of a model's weights have.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS",
    20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


def later_part(name: str) -> bool:
    """A split model's second part or later: never a model on its own."""
    match = SPLIT.match(name)
    return match is not None and int(match["part"]) > 1

# ggml tensor type -> (elements per block, bytes per block): what a tensor's data takes on disk.
# A type missing here (a newer one) is sized by its offset alone.
GGML_TYPE_SIZES = {
    0: (1, 4),  # f32
    1: (1, 2),  # f16
    2: (32, 18),  # q4_0
    3: (32, 20),  # q4_1
    6: (32, 22),  # q5_0
    7: (32, 24),  # q5_1
    8: (32, 34),  # q8_0
    9: (32, 36),  # q8_1
    10: (256, 84),  # q2_K
    11: (256, 110),  # q3_K
    12: (256, 144),  # q4_K
    13: (256, 176),  # q5_K
    14: (256, 210),  # q6_K
    15: (256, 292),  # q8_K
    24: (1, 1),  # i8
    25: (1, 2),  # i16
    26: (1, 4),  # i32
    27: (1, 8),  # i64
    28: (1, 8),  # f64
    30: (1, 2),  # bf16
}


@dataclass(frozen=True)
class Tensor:
    name: str
    type: int  # ggml type id
    n_elements: int
    offset: int  # from the start of the data section

    @property
    def n_bytes(self) -> int:
        """Its data's size on disk (0 for a type `GGML_TYPE_SIZES` does not know)."""
        block, nbytes = GGML_TYPE_SIZES.get(self.type, (1, 0))
        return -(-self.n_elements // block) * nbytes


@dataclass(frozen=True)
class Header:
    version: int
    meta: dict[str, Any]  # scalars and strings; arrays are skipped
    tensors: list[Tensor]
    data_start: int

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends: a whole file is at least this long."""
        return self.data_start + max((t.offset + t.n_bytes for t in self.tensors), default=0)


class _Reader:
    """Reads the header through a buffer, a chunk at a time, and refuses to go past `MAX_HEADER`."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.buf = b""
        self.pos = 0  # in buf
        self.base = 0  # file offset of buf[0]
        self.len_fmt, self.len_size = "<Q", 8

    def tell(self) -> int:
        return self.base + self.pos

    def need(self, n: int) -> None:
        """Make sure `n` more bytes are in the buffer."""
        if self.pos + n <= len(self.buf):
            return
        if self.tell() + n > MAX_HEADER:
            raise ValueError(f"the GGUF header is over {MAX_HEADER >> 20} MiB, more than any model's")
        more = self.f.read(max(n - (len(self.buf) - self.pos), _CHUNK))
        self.base += self.pos
        self.buf, self.pos = self.buf[self.pos :] + more, 0
        if len(self.buf) < n:
            raise EOFError

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size)
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def count(self) -> int:
        n: int = self.unpack(self.len_fmt)
        return n

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n

    def string(self) -> str:
        n = self.count()
        if n > MAX_STRING:
            raise ValueError(f"string of {n} bytes in the header")
        self.need(n)
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data.decode("utf-8", "replace")

    def skip_strings(self, n: int) -> None:
        """Skip `n` strings (a vocabulary, say) without decoding them."""
        unpack, size = struct.Struct(self.len_fmt).unpack_from, self.len_size
        for _ in range(n):  # the hot loop of a listing: a vocabulary has 10^5 strings
            if self.pos + size > len(self.buf):
                self.need(size)
            (length,) = unpack(self.buf, self.pos)
            if length > MAX_STRING:
                raise ValueError(f"string of {length} bytes in the header")
            if self.pos + size + length > len(self.buf):
                self.need(size + length)
            self.pos += size + length

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            self.array()
            return None
        if vtype not in _SCALAR:
            raise ValueError(f"unknown metadata type {vtype}")
        return self.unpack("<" + _SCALAR[vtype])

    def array(self) -> None:
        """Skip an array: only scalars and strings are kept."""
        etype: int = self.unpack("<I")
        n = self.count()
        if n > MAX_ITEMS:
            raise ValueError(f"array of {n} items in the header")
        if etype in _SCALAR:
            self.skip(n * struct.calcsize("<" + _SCALAR[etype]))
        elif etype == _STRING:
            self.skip_strings(n)
        else:
            for _ in range(n):
                self.value(etype)

    def tensor(self) -> Tensor:
        name = self.string()
        n_dims = self.unpack("<I")
        if n_dims > 4:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        n = 1
        for _ in range(n_dims):
            n *= self.count()
        ttype: int = self.unpack("<I")
        offset: int = self.unpack("<Q")
        return Tensor(name, ttype, n, offset)


def read_header(path: str | os.PathLike[str]) -> Header:
    """The header of a GGUF file, or `ModelLoadError` naming the file and what is wrong."""
    try:
        with open(path, "rb") as f:
            return _parse(_Reader(f))
    except (EOFError, struct.error):
        raise ModelLoadError(
            f"cannot load {path}: the GGUF header is cut short (truncated or damaged file; download it again)"
        ) from None
    except ValueError as e:
        raise ModelLoadError(f"cannot load {path}: {e}") from None


def _parse(r: _Reader) -> Header:
    r.skip(4)  # the magic
    version: int = r.unpack("<I")
    if version not in VERSIONS:
        raise ValueError(f"GGUF version {version} (versions {VERSIONS[0]} to {VERSIONS[-1]} are known)")
    if version == 1:
        r.len_fmt, r.len_size = "<I", 4
    n_tensors, n_kv = r.count(), r.count()
    if n_tensors > 1 << 20 or n_kv > 1 << 20:
        raise ValueError("implausible tensor or metadata count")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        value = r.value(r.unpack("<I"))
        if value is not None:
            meta[key] = value
    tensors = [r.tensor() for _ in range(n_tensors)]
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        raise ValueError(f"bad general.alignment {alignment!r}")
    data_start = -(-r.tell() // alignment) * alignment
    return Header(version, meta, tensors, data_start)


def check_whole(path: str | os.PathLike[str], header: Header) -> None:
    """`ModelLoadError` if the file is shorter than its tensors' data: a truncated download, or a
    file still being copied in."""
    size = os.path.getsize(path)
    if size < header.data_end:
        raise ModelLoadError(
            f"cannot load {path}: it is {size} bytes and its tensors need {header.data_end}"
            " (truncated, or still being copied; download it again)"
        )
