"""Static files with cache headers, served gzip-compressed from `.gz` siblings made at setup, and
the page rewritten to use the build's content-addressed assets.

Compressing the 9.6 MB Pyodide wasm per request would cost more than it saves on localhost,
so `python -m server.static DIR` writes the compressed copies once.

`make setup` (scripts/vendor.py) also builds `static/app/`: folders named by a hash of what they
are built from, so a name never changes meaning and the server sends them as `immutable` (a
returning browser asks for nothing). `static/app/manifest.json` says which folder replaces
which logical URL of client/index.html:
- `/static/pyodide/`: our Pyodide with its standard library precompiled to bytecode by Pyodide's
  own CPython (`static/pyodide/` stays the untouched npm copy);
- `/static/pyscript/`: PyScript;
- each wheel of the page's `packages`, precompiled;
- the client: its modules (the config's `files`) as one precompiled wheel, added to `packages`
  so Pyodide installs it while the interpreter boots, and the entry script, main.py.
`page()` applies it to index.html. The client bundle is used only while the sources it was
built from are unchanged (`client_sources`); otherwise, and in dev mode, the page gets the
modules one by one from /client/ as the source index.html says, so an edit is never hidden.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import os
import re
import sys
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from wire.types import CODE_TIME_LIMIT_ATTRIBUTE, CODE_TIME_LIMIT_S

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/x-python", ".py")

COMPRESSIBLE = {".wasm", ".mjs", ".js", ".css", ".json", ".py", ".html", ".map", ".zip"}


IMMUTABLE = 365 * 86400
APP_DIR = "app"  # under static/: the content-addressed build
MANIFEST = "manifest.json"


class CachedStatic(StaticFiles):
    """Files with `max_age` (0: revalidate every time), except under `app/`, the content-addressed
    build, which never changes at a given URL: cached for a year, `immutable`."""

    def __init__(self, *, max_age: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cache_control = f"public, max-age={max_age}" if max_age else "no-cache"
        self.roots = [os.path.join(os.path.realpath(str(d)), "") for d in self.all_directories]
        self.immutable_under = [os.path.join(root, APP_DIR, "") for root in self.roots]

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        request_headers = Headers(scope=scope)
        media_type = mimetypes.guess_type(str(full_path))[0] or "application/octet-stream"
        immutable = os.path.realpath(full_path).startswith(tuple(self.immutable_under))
        cache_control = f"public, max-age={IMMUTABLE}, immutable" if immutable else self.cache_control
        headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        packed = Path(f"{full_path}.gz")
        wants_gzip = "gzip" in request_headers.get("accept-encoding", "")
        if wants_gzip and self._contains(packed) and _fresh(packed, stat_result):
            headers["Content-Encoding"] = "gzip"
            response: Response = FileResponse(packed, status_code, headers, media_type, stat_result=packed.stat())
        else:
            response = FileResponse(full_path, status_code, headers, media_type, stat_result=stat_result)
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        return response

    def _contains(self, packed: Path) -> bool:
        """Whether the `.gz` sibling really lies in a served directory: Starlette checks the path
        asked for, not this one, and a symlink there must not serve a file from elsewhere."""
        return os.path.realpath(packed).startswith(tuple(self.roots))


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


# -- the page and the build's manifest ------------------------------------------------------------

PY_SCRIPT = re.compile(r"""<script\b[^>]*\btype="py"[^>]*>""")
ATTR = re.compile(r"""\b(src|config)=(?:"([^"]*)"|'([^']*)')""")


def py_script(html: str) -> tuple[re.Match[str], str, dict[str, Any]]:
    """The page's `<script type="py">` tag, its src and its parsed config."""
    found = PY_SCRIPT.search(html)
    if found is None:
        raise ValueError("index.html has no <script type=\"py\">")
    attrs = {m[1]: m[2] if m[2] is not None else m[3] for m in ATTR.finditer(found[0])}
    return found, attrs["src"], json.loads(attrs["config"])


def client_files(root: Path, html: str) -> list[tuple[str, Path]]:
    """What the client bundle is built from: the entry script and the config's `files`, as
    (URL or path in the browser's file system, file here)."""
    _, src, config = py_script(html)
    files = [(dest, root / url.lstrip("/")) for url, dest in config.get("files", {}).items()]
    return [(src, root / src.lstrip("/")), *files]


def client_sources(files: list[tuple[str, Path]]) -> str:
    """A hash of the client's names and bytes: the bundle built from them carries it."""
    h = hashlib.sha256()
    for name, path in files:
        data = path.read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode() + data)
    return h.hexdigest()[:16]


def load_manifest(static: Path) -> dict[str, Any] | None:
    try:
        return json.loads((static / APP_DIR / MANIFEST).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def page(html: str, manifest: dict[str, Any] | None, sources: str | None) -> str:
    """index.html as served: logical asset URLs replaced by the build's (`manifest["urls"]`,
    longest first), and, given the hash of the current client sources and a bundle built from
    them, the client as one wheel in `packages` instead of the `files` map."""
    if not manifest:
        return html
    tag, _, config = py_script(html)
    client = manifest.get("client")
    if client and sources == client["sources"]:
        config = {k: v for k, v in config.items() if k != "files"}
        config["packages"] = [*config.get("packages", []), client["wheel"]]
        text = json.dumps(config, indent=2).replace("'", "\\u0027")
        new_tag = ATTR.sub(lambda m: f'src="{client["main"]}"' if m[1] == "src" else f"config='{text}'", tag[0])
        html = html[: tag.start()] + new_tag + html[tag.end():]
    urls: dict[str, str] = manifest.get("urls", {})
    for old in sorted(urls, key=len, reverse=True):
        html = html.replace(f'"{old}', f'"{urls[old]}')
    return html


class Page:
    """client/index.html as `page()` serves it, rebuilt when a file it depends on changes."""

    def __init__(self, root: Path, static: Path, dev: bool, code_time_limit_s: float = CODE_TIME_LIMIT_S) -> None:
        self.root, self.static, self.dev = root, static, dev
        self.code_time_limit_s = code_time_limit_s
        self._key: tuple[Any, ...] | None = None
        self._html = ""

    def response(self, request_headers: Headers) -> Response:
        """The page, revalidated by ETag, with the time limit of code run in it (client/sandbox.py);
        in dev mode it carries the reload stream's address (client/devreload.py)."""
        html = self.html().replace("<html ", f'<html {CODE_TIME_LIMIT_ATTRIBUTE}="{self.code_time_limit_s:g}" ', 1)
        if self.dev:
            html = html.replace("<html ", '<html data-dev-reload="/dev/reload" ', 1)
        etag = f'"{hashlib.sha256(html.encode()).hexdigest()[:16]}"'
        headers = {"Cache-Control": "no-cache", "ETag": etag}
        if request_headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(html, headers=headers)

    def html(self) -> str:
        index = self.root / "client" / "index.html"
        text = index.read_text()
        try:
            files = client_files(self.root, text)
        except (ValueError, KeyError):
            files = []
        key = (text, *(_stamp(p) for p in [self.static / APP_DIR / MANIFEST, *(path for _, path in files)]))
        if key != self._key:
            try:
                sources = None if self.dev or not files else client_sources(files)
            except OSError:
                sources = None
            self._html = page(text, load_manifest(self.static), sources)
            self._key = key
        return self._html


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(f"{folder}: {precompress(Path(folder))} files compressed")
