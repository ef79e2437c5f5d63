"""Read a GGUF file's header: its metadata scalars and its tensor table, without loading it.

Engines use it to check a file before native code sees it (a truncated file can crash a loader)
and to read facts such as the model's own chat template.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from server.engines.base import ModelLoadError

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
MAX_STRING = 1 << 20
MAX_ITEMS = 1 << 24


@dataclass(frozen=True)
class Tensor:
    name: str
    type: int  # ggml type id
    n_elements: int
    offset: int  # from the start of the data section


@dataclass(frozen=True)
class Header:
    version: int
    meta: dict[str, Any]  # scalars and strings; arrays are skipped
    tensors: list[Tensor]
    data_start: int


class _Reader:
    def __init__(self, f: BinaryIO, version: int) -> None:
        self.f = f
        self.len_fmt = "<I" if version == 1 else "<Q"

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise EOFError
        return struct.unpack(fmt, data)[0]

    def count(self) -> int:
        n: int = self.unpack(self.len_fmt)
        return n

    def string(self) -> str:
        n = self.count()
        if n > MAX_STRING:
            raise ValueError(f"string of {n} bytes in the header")
        data = self.f.read(n)
        if len(data) != n:
            raise EOFError
        return data.decode("utf-8", "replace")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype: int = self.unpack("<I")
            n = self.count()
            if n > MAX_ITEMS:
                raise ValueError(f"array of {n} items in the header")
            if etype in _SCALAR:  # skipped: only scalars and strings are kept
                self.f.seek(n * struct.calcsize("<" + _SCALAR[etype]), os.SEEK_CUR)
                return None
            for _ in range(n):
                self.value(etype)
            return None
        if vtype not in _SCALAR:
            raise ValueError(f"unknown metadata type {vtype}")
        return self.unpack("<" + _SCALAR[vtype])

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
            f.read(4)
            version = struct.unpack("<I", f.read(4))[0]
            r = _Reader(f, version)
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
            data_start = -(-f.tell() // alignment) * alignment
    except (EOFError, struct.error):
        raise ModelLoadError(
            f"cannot load {path}: the GGUF header is cut short (truncated or damaged file; download it again)"
        ) from None
    except ValueError as e:
        raise ModelLoadError(f"cannot load {path}: {e}") from None
    return Header(version, meta, tensors, data_start)
