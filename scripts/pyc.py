"""Precompile the Python in a zip or wheel to bytecode, run by Pyodide's own CPython.

`scripts/vendor.py` runs this file inside Pyodide under Node.js (`node` loads
node_modules/pyodide, mounts the folder and calls `main`), so the bytecode comes from the
interpreter the browser runs, never from the CPython that runs the build.

Each `x.py` becomes `x.pyc` beside it, sourceless, as Pyodide's own `pyodide py-compile` does:
zipimport (the stdlib zip) and the path finder (wheels, installed into site-packages) both load a
lone `.pyc` without looking for its source. Entries are stored, not deflated, so that importing
does no zlib work in WebAssembly; the server sends the file gzip-compressed. A wheel's RECORD is
rewritten to list what it now holds.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
import zipfile
from pathlib import Path

EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same input gives the same bytes (and hash)


def pyc(source: bytes, name: str) -> bytes:
    """Bytecode for `source`, as an unchecked hash-based .pyc (nothing to compare at import)."""
    code = compile(source, name, "exec", dont_inherit=True)
    from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]

    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def compile_archive(src: Path, dst: Path, prefix: str = "", keep: tuple[str, ...] = ()) -> tuple[int, int]:
    """Write `dst`: `src` with every .py (except names ending in `keep`) compiled; returns
    (compiled, kept as is). `prefix + name` is the file name the bytecode carries (tracebacks
    show it): where the module lives in the browser's file system."""
    compiled = kept = 0
    out: list[tuple[str, bytes]] = []
    record = None
    with zipfile.ZipFile(src) as zin:
        for info in zin.infolist():
            data = b"" if info.is_dir() else zin.read(info)
            name = info.filename
            if name.endswith(".dist-info/RECORD"):
                record = name
                continue
            if name.endswith(".py") and not name.endswith(keep):
                try:
                    data, name = pyc(data, prefix + name), name + "c"
                    compiled += 1
                except SyntaxError:  # e.g. lib2to3-style test data: ship the source
                    kept += 1
            out.append((name, data))
    if record is not None:
        lines = [_record_line(n, d) for n, d in out if not n.endswith("/")]
        out.append((record, ("\n".join([*lines, f"{record},,"]) + "\n").encode()))
    tmp = dst.with_name(dst.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for name, data in out:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = (0o40755 << 16 | 0x10) if name.endswith("/") else 0o644 << 16
            zout.writestr(info, data)
    tmp.replace(dst)
    return compiled, kept


def main(jobs: list[tuple[str, str, str]]) -> None:
    """Compile each (src, dst, prefix); paths are as Pyodide sees them (the mounted folder)."""
    print(f"pyc: Python {sys.version.split()[0]} on {sys.platform}", flush=True)
    if sys.platform != "emscripten":
        raise SystemExit("scripts/pyc.py must run in Pyodide (scripts/vendor.py does that)")
    for src, dst, prefix in jobs:
        compiled, kept = compile_archive(Path(src), Path(dst), prefix)
        print(f"pyc: {Path(dst).name}: {compiled} module(s) compiled, {kept} kept as source", flush=True)
