"""Models from the Hugging Face Hub, on the real server, with the real `huggingface_hub` pointed by
HF_ENDPOINT at a Hub on loopback (tests/hub.py) that serves real GGUF files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

from tests import tinymodels as tm
from tests.harness import answer_of, chat, converse, start_server, stop_server, wait_until
from tests.hub import TOKEN, Hub, Repo, running, start_with_hub

REPO = "test/tiny-GGUF"
HUGE = 10**15  # bytes no disk here has
# huggingface_hub writes what it received chunk by chunk (DOWNLOAD_CHUNK_SIZE): a file cut halfway
# past a chunk resumes from that chunk's end
CUT = os.urandom(2 * DOWNLOAD_CHUNK_SIZE + 12345)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    tm.write_gguf(path, "f32")
    return path.read_bytes()


@pytest.fixture(scope="module")
def hub(tiny: bytes) -> Iterator[Hub]:
    hub = Hub({
        REPO: Repo({
            "tiny-Q4_K_M.gguf": tiny,
            "tiny-Q8_0.gguf": tiny + b"\0" * 1024,
            "cut-Q4_0.gguf": CUT,
            "bad-Q4_0.gguf": tiny,
            "slow-Q4_0.gguf": os.urandom(3 * DOWNLOAD_CHUNK_SIZE),
            "split-Q4_0-00001-of-00002.gguf": tiny,
            "split-Q4_0-00002-of-00002.gguf": os.urandom(1 << 16),
            "huge-F16.gguf": b"x",
            "mmproj-tiny-f16.gguf": os.urandom(1 << 12),
            "README.md": b"# tiny",
        }, sizes={"huge-F16.gguf": HUGE}, hashes={"bad-Q4_0.gguf": "0" * 64}),
        "test/gated-GGUF": Repo({"g-Q4_0.gguf": tiny}, gated=True),
    })
    with running(hub):
        yield hub


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(hub: Hub, folder: Path) -> Iterator[str]:
    proc, url = start_with_hub(hub, folder, MAX_LOADED_MODELS="2")
    yield url
    stop_server(proc)


def download(url: str, name: str, **extra: Any) -> dict[str, Any]:
    """Start a download, wait for its end, and say how it ended."""
    started = httpx.post(f"{url}/api/downloads", json={"repo": REPO, "name": name, **extra})
    assert started.status_code == 201, started.text
    return finished(url, started.json()["id"])


def finished(url: str, download_id: str) -> dict[str, Any]:
    def state() -> dict[str, Any]:
        return next(d for d in httpx.get(f"{url}/api/downloads").json()["downloads"] if d["id"] == download_id)

    wait_until(lambda: state()["status"] in ("done", "failed", "cancelled"), timeout=60)
    return state()


def offered(url: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in httpx.get(f"{url}/api/models").json()["models"]}


def test_a_repositorys_models_are_listed_with_size_quant_and_what_fits(server: str, tiny: bytes) -> None:
    listed = httpx.get(f"{server}/api/hub/{REPO}").json()
    models = {m["name"]: m for m in listed["models"]}
    assert "README.md" not in models and "split-Q4_0-00002-of-00002.gguf" not in models
    assert models["tiny-Q4_K_M.gguf"] | {"best": False} == {
        "name": "tiny-Q4_K_M.gguf", "files": ["tiny-Q4_K_M.gguf"], "size": len(tiny), "quant": "Q4_K_M",
        "fits": True, "best": False}
    assert models["split-Q4_0-00001-of-00002.gguf"]["files"] == [
        "split-Q4_0-00001-of-00002.gguf", "split-Q4_0-00002-of-00002.gguf"]
    assert not models["huge-F16.gguf"]["fits"] and models["huge-F16.gguf"]["quant"] == "F16"
    assert [m["name"] for m in listed["models"] if m["best"]] == ["slow-Q4_0.gguf"]  # the largest that fits
    assert [p["name"] for p in listed["projectors"]] == ["mmproj-tiny-f16.gguf"]
    assert listed["memory_free"] > 0 and listed["disk_free"] > 0


def test_a_download_arrives_checked_and_is_offered_at_once(server: str, folder: Path, tiny: bytes) -> None:
    assert "tiny-Q4_K_M.gguf" not in offered(server)
    done = download(server, "tiny-Q4_K_M.gguf")
    assert (done["status"], done["done"], done["total"]) == ("done", len(tiny), len(tiny))
    assert (folder / "tiny-Q4_K_M.gguf").read_bytes() == tiny
    assert not (folder / ".downloading").exists() or not any((folder / ".downloading").iterdir())
    assert offered(server)["tiny-Q4_K_M.gguf"]["usable"]
    status, events = converse(server, {**chat("Hi"), "model": "tiny-Q4_K_M.gguf", "params": {"max_tokens": 8}})
    assert status == 200 and answer_of(events) == tm.ANSWER[: len(answer_of(events))] and answer_of(events)
    again = httpx.post(f"{server}/api/downloads", json={"repo": REPO, "name": "tiny-Q4_K_M.gguf"})
    assert again.status_code == 409 and again.json()["error"]["type"] == "already_there"


def test_a_connection_cut_halfway_is_resumed(server: str, hub: Hub, folder: Path) -> None:
    hub.cut.add("cut-Q4_0.gguf")
    assert download(server, "cut-Q4_0.gguf")["status"] == "done"
    ranges = [r for method, path, r in hub.seen if method == "GET" and path.endswith("/cut-Q4_0.gguf")]
    assert ranges == ["", f"bytes={DOWNLOAD_CHUNK_SIZE}-"]  # the rest, not the whole again
    assert (folder / "cut-Q4_0.gguf").read_bytes() == CUT


def test_a_corrupt_file_is_never_offered(server: str, folder: Path) -> None:
    failed = download(server, "bad-Q4_0.gguf")
    assert failed["status"] == "failed" and "corrupt" in failed["error"]
    assert not (folder / "bad-Q4_0.gguf").exists() and "bad-Q4_0.gguf" not in offered(server)


def test_cancel_stops_a_download_and_keeps_nothing(server: str, hub: Hub, folder: Path) -> None:
    hub.delay_s = 0.005  # 30 MiB at 64 KiB a pause: seconds, and progress after each 10 MiB
    try:
        started = httpx.post(f"{server}/api/downloads", json={"repo": REPO, "name": "slow-Q4_0.gguf"}).json()
        wait_until(lambda: any(d["done"] > 0 for d in httpx.get(f"{server}/api/downloads").json()["downloads"]
                               if d["id"] == started["id"]), timeout=30)
        assert httpx.post(f"{server}/api/downloads/{started['id']}/cancel").status_code == 204
        assert finished(server, started["id"])["status"] == "cancelled"
    finally:
        hub.delay_s = 0.0
    staging = folder / ".downloading"
    wait_until(lambda: not staging.exists() or not any(staging.iterdir()), timeout=30)  # at its next chunk
    assert not (folder / "slow-Q4_0.gguf").exists()


def test_a_split_set_comes_whole_and_is_one_model(server: str, folder: Path) -> None:
    assert download(server, "split-Q4_0-00001-of-00002.gguf")["status"] == "done"
    assert (folder / "split-Q4_0-00002-of-00002.gguf").exists()
    names = offered(server)
    assert "split-Q4_0-00001-of-00002.gguf" in names and "split-Q4_0-00002-of-00002.gguf" not in names


def test_vision_brings_the_repositorys_projector(server: str, folder: Path) -> None:
    done = download(server, "tiny-Q8_0.gguf", vision=True)
    assert done["status"] == "done" and done["files"] == ["tiny-Q8_0.gguf", "mmproj-tiny-f16.gguf"]
    assert (folder / "mmproj-tiny-f16.gguf").exists()


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        ("/api/downloads", {"repo": REPO, "name": "huge-F16.gguf"}, 400, "insufficient_storage"),
        ("/api/downloads", {"repo": REPO, "name": "nope.gguf"}, 404, "model_not_found"),
        ("/api/downloads", {"repo": "test/missing", "name": "x.gguf"}, 404, "repo_not_found"),
        ("/api/downloads", {"repo": "not a repo", "name": "x.gguf"}, 400, "invalid_request"),
        ("/api/hub/test/gated-GGUF", None, 403, "gated_repo"),
        ("/api/downloads/nope/cancel", {}, 404, "download_not_found"),
    ],
)
def test_what_cannot_be_downloaded_is_a_4xx_that_says_why(
    server: str, path: str, body: dict[str, Any] | None, status: int, kind: str
) -> None:
    r = httpx.get(server + path) if body is None else httpx.post(server + path, json=body)
    assert r.status_code == status and r.json()["error"]["type"] == kind, r.text
    if kind == "insufficient_storage":
        assert "needs 1000000.0 GB" in r.json()["error"]["message"]  # with its numbers


def test_hf_token_opens_a_gated_repository_and_offline_hides_downloading(hub: Hub, tmp_path: Path) -> None:
    env = {"MODEL_PATH": "", "ENGINE": "auto", "MODELS_DIR": str(tmp_path), "HF_ENDPOINT": hub.url}
    proc, url = start_server(env={**env, "HF_TOKEN": TOKEN})
    try:
        assert [m["name"] for m in httpx.get(f"{url}/api/hub/test/gated-GGUF").json()["models"]] == ["g-Q4_0.gguf"]
    finally:
        stop_server(proc)
    asked = len(hub.seen)
    proc, url = start_server(env={**env, "OFFLINE": "true"})
    try:
        assert httpx.get(f"{url}/api/downloads").json() == {"downloads": [], "enabled": False}
        refused = httpx.post(f"{url}/api/downloads", json={"repo": REPO, "name": "tiny-Q4_K_M.gguf"})
        assert refused.status_code == 404 and refused.json()["error"]["type"] == "downloads_off"
        assert httpx.get(f"{url}/api/hub/{REPO}").status_code == 404
    finally:
        stop_server(proc)
    assert len(hub.seen) == asked  # an offline server never asked the Hub anything


def test_a_models_folder_file_is_loaded_unloaded_and_deleted_from_the_page(
    server: str, folder: Path, tiny: bytes
) -> None:
    (folder / "mine-Q4_0.gguf").write_bytes(tiny)
    listed = offered(server)
    mine, default = listed["mine-Q4_0.gguf"], listed[httpx.get(f"{server}/api/models").json()["default"]]
    assert (mine["size"], mine["deletable"], mine["loaded"]) == (len(tiny), True, False)
    assert default["quant"] == "Q4_K_M" and not default["deletable"] and default["size"] > 200_000_000
    assert httpx.post(f"{server}/api/models/mine-Q4_0.gguf/load").status_code == 204
    assert offered(server)["mine-Q4_0.gguf"]["loaded"]
    assert httpx.post(f"{server}/api/models/mine-Q4_0.gguf/unload").status_code == 204
    wait_until(lambda: not offered(server)["mine-Q4_0.gguf"]["loaded"], timeout=10)
    assert httpx.post(f"{server}/api/models/mine-Q4_0.gguf/delete").status_code == 204
    assert not (folder / "mine-Q4_0.gguf").exists() and "mine-Q4_0.gguf" not in offered(server)
    refused = httpx.post(f"{server}/api/models/{default['name']}/delete")
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "not_deletable"
    assert httpx.post(f"{server}/api/models/nope.gguf/load").status_code == 404
