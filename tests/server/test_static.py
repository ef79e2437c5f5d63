"""The page as served: index.html with the build's content-addressed assets (server/static.py),
the client as one precompiled wheel only while its sources are unchanged, and the build's
folders sent as immutable."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from server.static import APP_DIR, MANIFEST, CachedStatic, Page, client_files, client_sources, page, py_script

ROOT = Path(__file__).resolve().parents[2]
HTML = (ROOT / "client" / "index.html").read_text()


def manifest(sources: str) -> dict[str, Any]:
    return {
        "urls": {
            "/static/pyodide/": "/static/app/pyodide-aaa/",
            "/static/pyscript/": "/static/app/pyscript-bbb/",
            "/static/wheels/reaktiv-0.24.2-py3-none-any.whl": "/static/app/wheels-ccc/reaktiv-0.24.2-py3-none-any.whl",
        },
        "client": {"sources": sources, "wheel": "/static/app/client-ddd/c.whl",
                   "main": "/static/app/client-ddd/main.py"},
    }


def test_without_a_build_the_page_is_served_as_written() -> None:
    assert page(HTML, None, "anything") == HTML


def test_the_build_replaces_asset_urls_and_the_client_files_by_its_wheel() -> None:
    sources = client_sources(client_files(ROOT, HTML))
    served = page(HTML, manifest(sources), sources)
    assert "/static/pyodide/" not in served and "/static/pyscript/" not in served
    assert 'href="/static/app/pyscript-bbb/core.js"' in served
    _, src, config = py_script(served)
    assert src == "/static/app/client-ddd/main.py"
    assert config["interpreter"] == "/static/app/pyodide-aaa/pyodide.mjs"
    assert "files" not in config
    assert config["packages"][-1] == "/static/app/client-ddd/c.whl"
    assert "/static/app/wheels-ccc/reaktiv-0.24.2-py3-none-any.whl" in config["packages"]
    assert config["plugins"] == py_script(HTML)[2]["plugins"]  # the rest of the config is kept


def test_a_client_changed_since_the_build_is_served_file_by_file() -> None:
    served = page(HTML, manifest("stale"), client_sources(client_files(ROOT, HTML)))
    _, src, config = py_script(served)
    assert src == py_script(HTML)[1] and config["files"] == py_script(HTML)[2]["files"]
    assert config["interpreter"] == "/static/app/pyodide-aaa/pyodide.mjs"  # the runtime still is the build's


def test_the_sources_hash_follows_every_module(tmp_path: Path) -> None:
    for package in ("client", "wire"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = client_sources(client_files(tmp_path, HTML))
    for module in ("client/app.py", "wire/types.py"):
        (tmp_path / module).write_text((tmp_path / module).read_text() + "\n# edit\n")
        assert client_sources(client_files(tmp_path, HTML)) != before, module
        before = client_sources(client_files(tmp_path, HTML))


@pytest.mark.parametrize("dev", [False, True])
def test_page_uses_the_bundle_unless_in_dev_mode(tmp_path: Path, dev: bool) -> None:
    static = tmp_path / "static"
    (static / APP_DIR).mkdir(parents=True)
    sources = client_sources(client_files(ROOT, HTML))
    (static / APP_DIR / MANIFEST).write_text(json.dumps(manifest(sources)))
    _, src, config = py_script(Page(ROOT, static, dev=dev).html())
    assert ("files" in config) is dev
    assert config["interpreter"] == "/static/app/pyodide-aaa/pyodide.mjs"


def test_the_page_revalidates_by_etag(tmp_path: Path) -> None:
    from starlette.datastructures import Headers

    served = Page(ROOT, tmp_path, dev=False)
    first = served.response(Headers())
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    again = served.response(Headers({"if-none-match": first.headers["etag"]}))
    assert again.status_code == 304


def test_the_build_is_immutable_and_the_rest_revalidates_or_expires(tmp_path: Path) -> None:
    (tmp_path / APP_DIR / "x-1").mkdir(parents=True)
    (tmp_path / APP_DIR / "x-1" / "a.js").write_text("1")
    (tmp_path / "pyodide").mkdir()
    (tmp_path / "pyodide" / "b.js").write_text("2")
    client = TestClient(Starlette(routes=[Mount("/static", CachedStatic(directory=tmp_path, max_age=86400))]))
    assert client.get("/static/app/x-1/a.js").headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/static/pyodide/b.js").headers["cache-control"] == "public, max-age=86400"


def test_a_gz_sibling_that_links_out_of_the_folder_is_not_served(tmp_path: Path) -> None:
    served, elsewhere = tmp_path / "static", tmp_path / "elsewhere"
    served.mkdir()
    elsewhere.mkdir()
    (served / "a.js").write_text("plain")
    (served / "b.js").write_text("plain")
    (served / "inside.gz").write_bytes(gzip.compress(b"packed"))
    (elsewhere / "secret.gz").write_bytes(gzip.compress(b"secret"))
    (served / "a.js.gz").symlink_to(elsewhere / "secret.gz")
    (served / "b.js.gz").symlink_to(served / "inside.gz")  # a link that stays inside is fine
    client = TestClient(Starlette(routes=[Mount("/static", CachedStatic(directory=served, max_age=0))]))
    escaped = client.get("/static/a.js", headers={"Accept-Encoding": "gzip"})
    assert escaped.text == "plain" and "content-encoding" not in escaped.headers
    kept = client.get("/static/b.js", headers={"Accept-Encoding": "gzip"})
    assert kept.text == "packed" and kept.headers["content-encoding"] == "gzip"


def test_the_page_carries_the_time_limit_of_code_run_in_it(tmp_path: Path) -> None:
    from starlette.datastructures import Headers

    from wire.types import CODE_TIME_LIMIT_ATTRIBUTE

    for limit, shown in ((30.0, "30"), (2.5, "2.5")):
        html = bytes(Page(ROOT, tmp_path, dev=False, code_time_limit_s=limit).response(Headers()).body).decode()
        assert f'<html {CODE_TIME_LIMIT_ATTRIBUTE}="{shown}" lang="en"' in html
