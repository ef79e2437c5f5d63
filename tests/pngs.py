"""PNGs for the image tests, written with numpy and zlib: a picture of any size (noise, so that it
neither compresses nor scales to nothing), and the size a PNG says it is."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def noise(width: int, height: int, seed: int = 0) -> bytes:
    """An RGB PNG of random pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


def size_of(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), png[:8]
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def gif(frames: list[list[int]], width: int, height: int, palette: list[tuple[int, int, int]]) -> bytes:
    """A GIF89a of `frames` (each a row-major list of palette indices, at most 4 colours). Its LZW
    data clears the table before each pixel, so each code stays 3 bits wide: valid, if not small."""
    assert len(palette) <= 4
    colours = b"".join(bytes(c) for c in palette + [(0, 0, 0)] * (4 - len(palette)))
    out = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x81, 0, 0) + colours  # a global table of 4
    for pixels in frames:
        codes = [c for p in pixels for c in (4, p)] + [5]  # clear, pixel, ...; end
        bits = sum(code << (3 * i) for i, code in enumerate(codes))
        data = bits.to_bytes((3 * len(codes) + 7) // 8, "little")
        blocks = b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255))
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # a graphic control block: 0.1 s a frame
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02" + blocks + b"\x00"
    return out + b"\x3b"
