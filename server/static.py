"""Static files with cache headers, served gzip-compressed from `.gz` siblings made at setup.

Compressing the 9.6 MB Pyodide wasm per request would cost more than it saves on localhost,
so `python -m server.static DIR` writes the compressed copies once.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import sys
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/x-python", ".py")

COMPRESSIBLE = {".wasm", ".mjs", ".js", ".css", ".json", ".py", ".html", ".map", ".zip"}


class CachedStatic(StaticFiles):
    def __init__(self, *, max_age: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cache_control = f"public, max-age={max_age}" if max_age else "no-cache"

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        request_headers = Headers(scope=scope)
        media_type = mimetypes.guess_type(str(full_path))[0] or "application/octet-stream"
        headers = {"Cache-Control": self.cache_control, "Vary": "Accept-Encoding"}
        packed = Path(f"{full_path}.gz")
        if "gzip" in request_headers.get("accept-encoding", "") and _fresh(packed, stat_result):
            headers["Content-Encoding"] = "gzip"
            response: Response = FileResponse(packed, status_code, headers, media_type, stat_result=packed.stat())
        else:
            response = FileResponse(full_path, status_code, headers, media_type, stat_result=stat_result)
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        return response


def _fresh(packed: Path, source: os.stat_result) -> bool:
    try:
        return packed.stat().st_mtime >= source.st_mtime
    except OSError:
        return False


def precompress(directory: Path) -> int:
    """Write `.gz` beside every compressible file that lacks a fresh one; return how many."""
    written = 0
    for path in directory.rglob("*"):
        if path.suffix not in COMPRESSIBLE or not path.is_file() or path.stat().st_size < 1024:
            continue
        packed = path.with_name(path.name + ".gz")
        if _fresh(packed, path.stat()):
            continue
        packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
        written += 1
    return written


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(f"{folder}: {precompress(Path(folder))} files compressed")
