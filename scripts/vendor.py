"""Put the browser's runtime in static/ so the page never needs a host other than ours, and
build static/app/, what the page boots from.

Run after `npm ci`:  .venv/bin/python scripts/vendor.py
Idempotent: files already in place (same size and mtime) are skipped, wheels already
downloaded are not fetched again, a build folder whose name (a hash of its inputs) exists is
not built again, and the CSS is rebuilt only when a source is newer.

static/pyodide/, static/pyscript/ and static/wheels/ are the packages as published. static/app/
(server/static.py says how the page uses it) holds, each in a folder named by a hash of what it
is built from, so the server can send it as immutable:
- Pyodide with its standard library precompiled to bytecode;
- PyScript;
- the page's wheels, precompiled;
- the client: its modules as one precompiled wheel, and its entry script.
The bytecode comes from Pyodide's own CPython, run under Node.js (scripts/pyc.py), never from
the CPython running this script.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client import markdown, pdf  # noqa: E402
from server.static import APP_DIR, MANIFEST, client_files, client_sources  # noqa: E402

NODE = ROOT / "node_modules"
STATIC = ROOT / "static"
APP = STATIC / APP_DIR
PYC = ROOT / "scripts" / "pyc.py"
STDLIB_IN_FS = "/lib/python314.zip/"  # where Pyodide puts python_stdlib.zip (its sys.path entry)
SITE_PACKAGES = "/lib/python3.14/site-packages/"
CLIENT_WHEEL = "snake_llama_client-0.0.0-py3-none-any.whl"
# Loads node_modules/pyodide in Node.js, mounts the repository and runs scripts/pyc.py there.
RUN_PYC = """
const [pyodide, root, jobs] = process.argv.slice(1);
const py = await (await import(pyodide)).loadPyodide();
py.mountNodeFS("/repo", root);
py.globals.set("jobs", jobs);
py.runPython("import json, sys; sys.path.insert(0, '/repo/scripts'); import pyc; pyc.main(json.loads(jobs))");
"""

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


def pinned(filename: str) -> str:
    """The requirement that pins a wheel's file name: "mdurl-0.1.2-py3-none-any.whl" -> "mdurl==0.1.2"."""
    name, version = filename.split("-")[:2]
    return f"{name}=={version}"


# Loaded by the page after it is ready, so they cost no start-up time: client.markdown lists the
# renderer's, client.pdf the PDF reader's (loaded when the first PDF is attached).
LAZY_WHEEL_URLS = markdown.WHEELS + pdf.WHEELS
LAZY_WHEELS = {pinned(Path(url).name): Path(url).name for url in LAZY_WHEEL_URLS}

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


def digest(*inputs: Path | str) -> str:
    """A short hash of files' bytes and strings: the name of what is built from them."""
    h = hashlib.sha256()
    for x in inputs:
        data = x.read_bytes() if isinstance(x, Path) else x.encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:12]


class Build:
    """static/app/: folders built in a temporary name and renamed when complete, the
    bytecode compiled in one Node.js run, and the manifest that maps the page's URLs."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, str, str]] = []  # (src, dst, prefix), repository-relative
        self.pending: list[tuple[Path, Path]] = []  # (temporary folder, final folder)
        self.urls: dict[str, str] = {}
        self.client: dict[str, str] | None = None
        self.built = 0

    def folder(self, name: str) -> tuple[Path, bool]:
        """The final folder and whether it needs building (then it is filled under a temporary name)."""
        final = APP / name
        if final.is_dir():
            return final, False
        tmp = APP / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.pending.append((tmp, final))
        return tmp, True

    def compile(self, src: Path, dst: Path, prefix: str) -> None:
        self.jobs.append((_in_fs(src), _in_fs(dst), prefix))

    def url(self, path: Path) -> str:
        return "/static/" + path.relative_to(STATIC).as_posix()

    def pyodide(self) -> None:
        src = NODE / "pyodide"
        h = digest(PYC, *(src / name for name in PYODIDE_FILES))
        dest, build = self.folder(f"pyodide-{h}")
        if build:
            for name in PYODIDE_FILES:
                if name != "python_stdlib.zip":
                    shutil.copy2(src / name, dest / name)
            self.compile(src / "python_stdlib.zip", dest / "python_stdlib.zip", STDLIB_IN_FS)
        self.urls["/static/pyodide/"] = f"/static/{APP_DIR}/pyodide-{h}/"

    def pyscript(self) -> None:
        src = NODE / "@pyscript" / "core" / "dist"
        files = sorted(p for p in src.rglob("*") if p.is_file())
        h = digest(*(p.relative_to(src).as_posix() for p in files), *files)
        dest, build = self.folder(f"pyscript-{h}")
        if build:
            for path in files:
                (dest / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / path.relative_to(src))
        self.urls["/static/pyscript/"] = f"/static/{APP_DIR}/pyscript-{h}/"

    def wheels(self) -> None:
        wheels = [STATIC / "wheels" / name for name in WHEELS.values()]
        h = digest(PYC, *wheels)
        dest, build = self.folder(f"wheels-{h}")
        for wheel in wheels:
            if build:
                self.compile(wheel, dest / wheel.name, SITE_PACKAGES)
            self.urls[f"/static/wheels/{wheel.name}"] = f"/static/{APP_DIR}/wheels-{h}/{wheel.name}"

    def client_bundle(self) -> None:
        """The client's modules (the config's `files`) as one wheel, and its entry script."""
        html = (ROOT / "client" / "index.html").read_text()
        files = client_files(ROOT, html)
        (entry, entry_path), modules = files[0], files[1:]
        sources = client_sources(files)
        name = f"client-{digest(PYC, sources)}"
        dest, build = self.folder(name)
        if build:
            source_wheel = dest / f".{CLIENT_WHEEL}"
            write_wheel(source_wheel, {dest_path: path.read_bytes() for dest_path, path in modules})
            self.compile(source_wheel, dest / CLIENT_WHEEL, SITE_PACKAGES)
            shutil.copy2(entry_path, dest / Path(entry).name)
        final = f"/static/{APP_DIR}/{name}"
        self.client = {"sources": sources, "wheel": f"{final}/{CLIENT_WHEEL}", "main": f"{final}/{Path(entry).name}"}

    def finish(self) -> None:
        if self.jobs:
            run_pyc(self.jobs)
        for tmp, final in self.pending:
            for leftover in tmp.glob(".*.whl"):
                leftover.unlink()
            for path in tmp.rglob("*"):
                path.chmod(0o755 if path.is_dir() else 0o644)  # Pyodide writes 0666
            tmp.rename(final)
            self.built += 1
        manifest = {"urls": self.urls, "client": self.client}
        (APP / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        used = [*self.urls.values(), *(self.client or {}).values()]
        keep = {MANIFEST, *(Path(u).parts[3] for u in used if u.startswith("/static/"))}
        for old in APP.iterdir():  # earlier builds nothing points at any more
            if old.name not in keep and not old.name.endswith(".gz"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()


def _in_fs(path: Path) -> str:
    """`path` as Pyodide sees it under Node.js: the repository is mounted at /repo."""
    return "/repo/" + path.absolute().relative_to(ROOT).as_posix()


def run_pyc(jobs: list[tuple[str, str, str]]) -> None:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is missing: it runs Pyodide's own CPython to precompile the bytecode")
    cmd = [node, "--input-type=module", "-e", RUN_PYC, "--", str(NODE / "pyodide" / "pyodide.mjs"), str(ROOT),
           json.dumps(jobs)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def write_wheel(path: Path, files: dict[str, bytes]) -> None:
    """A pure-Python wheel holding `files` (RECORD is written when it is compiled)."""
    info = "snake_llama_client-0.0.0.dist-info"
    files = {**files, f"{info}/METADATA": b"Metadata-Version: 2.1\nName: snake-llama-client\nVersion: 0.0.0\n",
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: scripts/vendor.py\nRoot-Is-Purelib: true\n"
             b"Tag: py3-none-any\n", f"{info}/RECORD": b""}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)


def build_app() -> int:
    APP.mkdir(parents=True, exist_ok=True)
    build = Build()
    build.pyodide()
    build.pyscript()
    build.wheels()
    build.client_bundle()
    build.finish()
    return build.built


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
    print(f"app: {build_app()} folder(s) built in {APP.relative_to(ROOT)}")
    print(f"css: {'built' if build_css('--force-css' in sys.argv) else 'up to date'}")


if __name__ == "__main__":
    main()
