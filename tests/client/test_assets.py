"""The page's wiring: what index.html asks for must exist, be pinned, and be local."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"


def load_vendor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor", ROOT / "scripts" / "vendor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PageScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.py_scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "script" and found.get("type") == "py":
            self.py_scripts.append(found)


def scan() -> PageScan:
    page = PageScan()
    page.feed((CLIENT / "index.html").read_text())
    return page


def pyscript_config() -> dict[str, Any]:
    [script] = scan().py_scripts
    assert script["config"] is not None
    config: dict[str, Any] = json.loads(script["config"])
    return config


def test_page_loads_nothing_from_another_host() -> None:
    urls = scan().urls
    assert urls
    for url in urls:
        in_page = url.startswith(("data:", "#"))  # "#": a link within the page (the skip link)
        assert url.startswith("/") and not url.startswith("//") or in_page, url


def test_python_runs_on_our_pyodide_with_our_wheels() -> None:
    vendor = load_vendor()
    config = pyscript_config()
    assert config["interpreter"] == "/static/pyodide/pyodide.mjs"
    assert "pyodide.mjs" in vendor.PYODIDE_FILES
    assert config["packages"] == [f"/static/wheels/{name}" for name in vendor.WHEELS.values()]
    assert config["packages_cache"] == "passthrough"  # anything else loads micropip


def test_every_client_module_is_shipped_to_the_browser() -> None:
    """A module missing from `files` imports on CPython but fails in the browser."""
    [script] = scan().py_scripts
    files = pyscript_config()["files"]
    for url, path in files.items():
        assert url == f"/{path}" and (ROOT / path).is_file(), (url, path)
    assert script["src"] is not None
    entry = script["src"].lstrip("/")
    modules = [*CLIENT.rglob("*.py"), *(ROOT / "wire").rglob("*.py")]
    wanted = {p.relative_to(ROOT).as_posix() for p in modules} - {entry}
    assert set(files.values()) == wanted


def test_browser_runtime_versions_are_pinned() -> None:
    deps = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert deps["pyodide"] == "314.0.7" and deps["@pyscript/core"] == "0.7.31"
    for name, version in deps.items():
        assert version[0].isdigit(), f"{name} is not pinned: {version}"


def test_wheels_loaded_later_are_vendored_and_pinned() -> None:
    """The page's late wheels (Markdown, math, the PDF reader) are what vendor.py downloads and
    what the CPython tests run: pyproject's dev pins name the same versions."""
    from client import markdown, pdf

    vendor = load_vendor()
    assert [*markdown.WHEELS, *pdf.WHEELS] == [f"/static/wheels/{name}" for name in vendor.LAZY_WHEELS.values()]
    assert not set(vendor.LAZY_WHEELS) & set(vendor.WHEELS)  # none of them is loaded at start-up
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pins = {re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower(): pin.split("==")[1] for pin in dev if "==" in pin}
    for requirement in vendor.LAZY_WHEELS:
        name, version = requirement.split("==")
        assert pins[re.sub(r"[-_.]+", "-", name).lower()] == version, requirement


def test_page_has_no_inline_script_style_or_handlers() -> None:
    """The server sends a strict Content-Security-Policy: nothing inline may be needed."""
    html = (CLIENT / "index.html").read_text()
    for forbidden in (" style=", "<style", " onclick=", " onload=", " onsubmit=", " onchange=", "javascript:"):
        assert forbidden not in html, forbidden
    for script in scan().py_scripts:
        assert script.get("src"), "inline Python would need 'unsafe-inline'"
