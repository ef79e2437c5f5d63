"""Put the browser's runtime in static/ so the page never needs a host other than ours.

Run after `npm ci`:  .venv/bin/python scripts/vendor.py
Idempotent: files already in place (same size and mtime) are skipped, wheels already
downloaded are not fetched again, and the CSS is rebuilt only when a source is newer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules"
STATIC = ROOT / "static"

# What Pyodide fetches at boot: the loader, the emscripten glue, the wasm, the stdlib and
# the lock file (read even when every package is given as a wheel URL).
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)

# Browser wheels, pinned. The file names are what client/index.html lists; the
# platform tag is the one Pyodide 314 (CPython 3.14, emscripten ABI 2026_0) accepts.
PLATFORM = "pyemscripten_2026_0_wasm32"
WHEELS = {
    "msgspec==0.22.0": "msgspec-0.22.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
    "reaktiv==0.24.2": "reaktiv-0.24.2-py3-none-any.whl",
}
# Loaded by the page after it is ready (client/markdown.py WHEELS), so they cost no start-up time.
LAZY_WHEELS = {
    "markdown-it-py==4.3.0": "markdown_it_py-4.3.0-py3-none-any.whl",
    "mdurl==0.1.2": "mdurl-0.1.2-py3-none-any.whl",
}

CSS_IN = ROOT / "style" / "input.css"
CSS_OUT = ROOT / "style" / "output.css"
TAILWIND = NODE / ".bin" / "tailwindcss"


def copy_if_changed(src: Path, dst: Path) -> bool:
    """Copy src to dst unless dst already has the same size and mtime; True if copied."""
    if dst.exists():
        s, d = src.stat(), dst.stat()
        if s.st_size == d.st_size and int(s.st_mtime) == int(d.st_mtime):
            return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return True


def vendor_pyodide() -> int:
    src = NODE / "pyodide"
    return sum(copy_if_changed(src / name, STATIC / "pyodide" / name) for name in PYODIDE_FILES)


def vendor_pyscript() -> int:
    # The whole dist/: core.js imports its hashed chunks lazily by relative URL.
    src = NODE / "@pyscript" / "core" / "dist"
    return sum(
        copy_if_changed(path, STATIC / "pyscript" / path.relative_to(src))
        for path in sorted(src.rglob("*"))
        if path.is_file()
    )


def vendor_wheels() -> int:
    dest = STATIC / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for requirement, filename in {**WHEELS, **LAZY_WHEELS}.items():
        if (dest / filename).exists():
            continue
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(dest),
            requirement,
        ]
        if "wasm32" in filename:
            cmd[5:5] = ["--platform", PLATFORM, "--python-version", "3.14"]
        subprocess.run(cmd, check=True)
        if not (dest / filename).exists():
            raise SystemExit(f"pip did not produce {filename} for {requirement}")
        fetched += 1
    return fetched


def css_sources() -> list[Path]:
    client = ROOT / "client"
    return [CSS_IN, client / "index.html", *client.rglob("*.py")]


def build_css(force: bool = False) -> bool:
    """Run the Tailwind CLI when output.css is missing or older than any source."""
    if not force and CSS_OUT.exists():
        newest = max(p.stat().st_mtime for p in css_sources())
        if CSS_OUT.stat().st_mtime >= newest:
            return False
    subprocess.run(
        [str(TAILWIND), "-i", str(CSS_IN), "-o", str(CSS_OUT), "--minify"], check=True, cwd=ROOT, capture_output=True
    )
    return True


def main() -> None:
    if not (NODE / "pyodide").is_dir() or not (NODE / "@pyscript" / "core").is_dir():
        raise SystemExit("node_modules is missing: run `npm ci` in the repository root first")
    print(f"pyodide: {vendor_pyodide()} file(s) copied")
    print(f"pyscript: {vendor_pyscript()} file(s) copied")
    print(f"wheels: {vendor_wheels()} downloaded")
    print(f"css: {'built' if build_css('--force-css' in sys.argv) else 'up to date'}")


if __name__ == "__main__":
    main()
