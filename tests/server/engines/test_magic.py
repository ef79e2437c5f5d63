"""Model format detection by magic bytes, and its errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from server.engines.base import ModelLoadError
from server.engines.magic import detect_format, magic_name


def write(tmp_path: Path, data: bytes, name: str = "model.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_ggjt_bytes_on_disk_are_reversed() -> None:
    # The u32 0x67676a74 spells "ggjt" but is written little-endian.
    assert struct.pack("<I", 0x67676A74) == b"tjgg"


@pytest.mark.parametrize(
    ("u32", "name"),
    [(0x67676A74, "ggjt"), (0x67676D66, "ggmf"), (0x67676C61, "ggla"), (0x67676D6C, "ggml")],
)
def test_ggml_family(tmp_path: Path, u32: int, name: str) -> None:
    p = write(tmp_path, struct.pack("<II", u32, 3) + b"\0" * 64)
    assert detect_format(p) == "ggml"
    assert magic_name(p) == name


def test_gguf(tmp_path: Path) -> None:
    p = write(tmp_path, b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    assert detect_format(p) == "gguf"
    assert detect_format(str(p)) == "gguf"


@pytest.mark.parametrize("data", [b"ggjt" + b"\0" * 8, b"FUGG" + b"\0" * 8, b"PK\x03\x04zip", b"GG", b""])
def test_unknown_magic(tmp_path: Path, data: bytes) -> None:
    # b"ggjt" as written is the big-endian spelling: not what llama.cpp writes.
    p = write(tmp_path, data)
    with pytest.raises(ModelLoadError) as e:
        detect_format(p)
    msg = str(e.value)
    assert str(p) in msg and "not a GGUF or GGML model file" in msg and "MODEL_PATH" in msg
    assert "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.gguf"
    with pytest.raises(ModelLoadError, match="model file not found: .*nope.gguf.*MODEL_PATH"):
        detect_format(p)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory.*MODEL_PATH"):
        detect_format(tmp_path)


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Permission bits do not stop root, so make the open itself fail as it would.
    p = write(tmp_path, b"GGUF")

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ModelLoadError, match="cannot read model file .*Permission denied.*permissions"):
        detect_format(p)
