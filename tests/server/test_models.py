"""Several models from one folder, chosen per chat: the real default model (by symlink), a tiny
model the tests write, and files that are no models."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from server.default_model import default_model_path
from server.engines.gguf import MAX_HEADER
from server.models import Models, UnknownModel, describe, models_folder
from server.settings import Settings
from tests import tinymodels as tm
from tests.harness import (
    COUNT,
    Popen,
    aiter_sse,
    answer_of,
    chat,
    children,
    converse,
    iter_sse,
    run_async,
    start_server,
    stop_server,
    wait_until,
)

DEFAULT = default_model_path().name
T = TypeVar("T")


def test_describe_tells_models_from_other_files(tmp_path: Path) -> None:
    settings = Settings(n_ctx=4096)
    tm.write_gguf(tmp_path / "plain.gguf", "f32")
    tm.write_gguf(tmp_path / "chatty.gguf", "f32", continuation=tm.ANSWER, chat_template=tm.CHAT_TEMPLATE)
    tm.write_ggjt(tmp_path / "old.bin", "f16")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + bytes(3))
    (tmp_path / "notes.bin").write_text("not a model")
    plain, chatty, old = (describe(tmp_path / n, settings) for n in ("plain.gguf", "chatty.gguf", "old.bin"))
    assert (plain.usable, plain.engine, plain.template, plain.n_ctx) == (True, "llama-cpp", "seed", 4096)
    assert (chatty.usable, chatty.template) == (True, "gguf")
    assert (old.usable, old.engine, old.template) == (True, "ctransformers", "seed")
    broken, notes = describe(tmp_path / "broken.gguf", settings), describe(tmp_path / "notes.bin", settings)
    assert not broken.usable and "broken.gguf" in broken.reason
    assert not notes.usable and "notes.bin" in notes.reason


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    (d / DEFAULT).symlink_to(default_model_path())
    tm.write_gguf(d / "tiny.gguf", "f32")
    (d / "broken.gguf").write_bytes(b"NOPE" + bytes(64))
    return d


def serve_folder(folder: Path, max_loaded: int) -> Iterator[str]:
    env = {"MODELS_DIR": str(folder), "MODEL_PATH": str(folder / DEFAULT), "MAX_LOADED_MODELS": str(max_loaded),
           "THREADS": "1"}
    proc, url = start_server(env=env)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def served(folder: Path) -> Iterator[str]:
    yield from serve_folder(folder, max_loaded=2)


def test_every_file_is_listed_and_unusable_ones_say_why(served: str) -> None:
    listing = httpx.get(f"{served}/api/models").json()
    assert listing["default"] == DEFAULT
    by_name = {m["name"]: m for m in listing["models"]}
    assert set(by_name) == {DEFAULT, "tiny.gguf", "broken.gguf"}
    assert by_name[DEFAULT]["usable"] and by_name[DEFAULT]["engine"] == "llama-cpp"
    assert not by_name["broken.gguf"]["usable"] and "broken.gguf" in by_name["broken.gguf"]["reason"]
    openai_ids = [m["id"] for m in httpx.get(f"{served}/v1/models").json()["data"]]
    assert sorted(openai_ids) == sorted([DEFAULT, "tiny.gguf"])


def test_each_chat_answers_with_the_model_it_names(served: str) -> None:
    status, events = converse(served, {**chat("What is the capital of France?", temperature=0, max_tokens=24),
                                       "model": "tiny.gguf"})
    assert status == 200
    assert answer_of(events) == tm.ANSWER and events[-1][1]["model"] == "tiny.gguf"
    _, events = converse(served, chat("What is the capital of France?", temperature=0, max_tokens=24))
    assert events[-1][0] == "done" and events[-1][1]["model"] == DEFAULT
    body = {"model": "tiny.gguf", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "max_tokens": 24}
    reply = httpx.post(f"{served}/v1/chat/completions", json=body, timeout=60).json()
    assert reply["model"] == "tiny.gguf" and reply["choices"][0]["message"]["content"] == tm.ANSWER


def test_two_chats_on_two_models_at_once(served: str) -> None:
    async def one(client: httpx.AsyncClient, model: str) -> tuple[str, str]:
        body = {**chat("What is the capital of France?", temperature=0, max_tokens=24), "model": model}
        text, done = "", ""
        async with client.stream("POST", f"{served}/api/converse", json=body) as response:
            async for name, data in aiter_sse(response):
                if name == "token":
                    text += json.loads(data)["text"]
                elif name == "done":
                    done = json.loads(data)["model"]
        return text, done

    async def main() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(timeout=120) as client:
            return list(await asyncio.gather(one(client, DEFAULT), one(client, "tiny.gguf")))

    (default_text, default_model), (tiny_text, tiny_model) = run_async(main())
    assert (default_model, tiny_model) == (DEFAULT, "tiny.gguf")
    assert tiny_text == tm.ANSWER and default_text and default_text != tm.ANSWER


def test_unknown_and_broken_models_are_refused_by_name(served: str) -> None:
    status, events = converse(served, {**chat("Hi"), "model": "nope.gguf"})
    assert status == 404 and events[0][1]["error"]["type"] == "model_not_found"
    body = {"model": "nope.gguf", "messages": [{"role": "user", "content": "Hi"}]}
    refused = httpx.post(f"{served}/v1/chat/completions", json=body)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
    status, events = converse(served, {**chat("Hi"), "model": "broken.gguf"})
    assert status == 200 and [n for n, _ in events] == ["answer", "loading", "error"]
    assert "broken.gguf" in events[-1][1]["message"]
    assert httpx.get(f"{served}/health").json()["status"] == "ok"  # and the server serves on


def test_files_come_and_go_without_a_restart(served: str, folder: Path) -> None:
    shutil.copy(folder / "tiny.gguf", folder / "newcomer.gguf")
    names = [m["name"] for m in httpx.get(f"{served}/api/models").json()["models"]]
    assert "newcomer.gguf" in names
    status, events = converse(served, {**chat("Hi", temperature=0, max_tokens=24), "model": "newcomer.gguf"})
    assert events[1][0] == "loading" and answer_of(events) == tm.ANSWER
    (folder / "newcomer.gguf").unlink()  # removed while loaded
    listing = httpx.get(f"{served}/api/models").json()["models"]
    assert "newcomer.gguf" not in [m["name"] for m in listing]
    status, _ = converse(served, {**chat("Hi"), "model": "newcomer.gguf"})
    assert status == 404


@pytest.fixture(scope="module")
def one_at_a_time(folder: Path) -> Iterator[str]:
    yield from serve_folder(folder, max_loaded=1)


def test_the_least_recently_used_model_makes_room_and_health_never_waits(one_at_a_time: str) -> None:
    url = one_at_a_time
    _, events = converse(url, {**chat("Hi", temperature=0, max_tokens=24), "model": "tiny.gguf"})
    assert events[1][0] == "loading" and answer_of(events) == tm.ANSWER
    listing = {m["name"]: m["loaded"] for m in httpx.get(f"{url}/api/models").json()["models"]}
    assert listing["tiny.gguf"] and not listing[DEFAULT]  # the default made room

    async def main() -> tuple[list[str], int]:
        async with httpx.AsyncClient(timeout=120) as client:
            body = chat("What is the capital of France?", temperature=0, max_tokens=8)
            async with client.stream("POST", f"{url}/api/converse", json=body) as response:
                stream = aiter_sse(response)
                assert (await anext(stream))[0] == "answer"
                first = await anext(stream)
                # the default model is loading again now: /health still answers at once
                health = (await client.get(f"{url}/health")).status_code
                rest = [name async for name, _ in stream]
                return [first[0], *rest], health

    names, health = run_async(main())
    assert names[0] == "loading" and "token" in names and names[-1] == "done"
    assert health == 200


# -- issue 27: loads one at a time, headers bounded, errors that name files only ------------------


def mapped_models(pid: int) -> list[str]:
    """The model files a process and its children have mapped now, one entry per process that maps
    each (llama.cpp maps a model while it is loaded, in a child process of the server)."""
    mapped: list[str] = []
    for one in {pid, *children(pid)}:
        try:
            with open(f"/proc/{one}/maps") as f:
                mapped += {line.split()[-1] for line in f if line.rstrip().endswith((".gguf", ".bin"))}
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            pass
    return mapped


# one client for every probe (making one costs tens of ms of this process's own time), which
# keeps no connection alive: each probe connects anew, as a monitor does
PROBE = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def health_ms(url: str) -> float:
    """How long /health takes to answer, on a new connection, in milliseconds."""
    started = time.perf_counter()
    PROBE.get(f"{url}/health")
    return (time.perf_counter() - started) * 1000


def while_running(task: Callable[[], T], probe: Callable[[], float], every: float = 0) -> tuple[T, list[float]]:
    """Run `task` on a thread and `probe` over and over (`every` seconds at most) until it ends: its
    result and the probes."""
    probes: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(task)
        while not future.done():
            probes.append(probe())
            wait([future], timeout=every)
        return future.result(), probes


def crafted_header(path: Path, n_strings: int) -> None:
    """A GGUF whose header is one array of `n_strings` empty strings: a lot of parsing, no model."""
    blob = struct.pack("<4sIQQ", b"GGUF", 3, 0, 1) + struct.pack("<Q", 3) + b"big"
    path.write_bytes(blob + struct.pack("<IIQ", 9, 8, n_strings) + bytes(8 * n_strings))


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Popen, str]]:
    d = tmp_path_factory.mktemp("rotating")
    (d / DEFAULT).symlink_to(default_model_path())
    tm.write_gguf(d / "tiny.gguf", "f32")
    tm.write_gguf(d / "tiny2.gguf", "f32")
    env = {"MODELS_DIR": str(d), "MODEL_PATH": str(d / DEFAULT), "MAX_LOADED_MODELS": "1", "THREADS": "1"}
    proc, url = start_server(env=env)
    yield proc, url
    stop_server(proc)


def test_a_rotation_never_holds_two_models_with_room_for_one(rotating: tuple[Popen, str]) -> None:
    proc, url = rotating

    def rotate() -> list[str]:
        async def one(client: httpx.AsyncClient, model: str) -> str:
            body = {**chat("Hi", temperature=0, max_tokens=4), "model": model}
            async with client.stream("POST", f"{url}/api/converse", json=body) as response:
                return [name async for name, _ in aiter_sse(response)][-1]

        async def main() -> list[str]:
            async with httpx.AsyncClient(timeout=120) as client:
                return list(await asyncio.gather(*(one(client, m) for m in ("tiny.gguf", DEFAULT, "tiny2.gguf"))))

        return run_async(main())

    ends, held = while_running(rotate, lambda: float(len(mapped_models(proc.pid))))
    assert ends == ["done", "done", "done"]
    assert max(held) <= 1, f"{max(held):.0f} models mapped at once"
    assert len(held) > 10  # the probe saw the rotation, not just its end


def test_health_answers_within_100_ms_while_models_load_and_unload(rotating: tuple[Popen, str]) -> None:
    proc, url = rotating

    def rotate() -> list[int]:  # with room for one, each load unloads the one before
        order = ("tiny.gguf", DEFAULT, "tiny2.gguf", DEFAULT)
        return [httpx.post(f"{url}/api/models/{m}/load", timeout=120).status_code for m in order]

    statuses, took = while_running(rotate, lambda: health_ms(url), every=0.02)
    assert statuses == [204] * 4
    slow = [f"{ms:.0f} ms (probe {i} of {len(took)})" for i, ms in enumerate(took) if ms >= 100]
    assert not slow, f"/health was slow while models loaded: {slow}"
    assert mapped_models(proc.pid) == [str(default_model_path())]  # the last load holds, in one process


def test_a_truncated_gguf_is_listed_unusable_and_never_loaded(served: str, folder: Path) -> None:
    whole = (folder / "tiny.gguf").read_bytes()
    (folder / "cut.gguf").write_bytes(whole[: len(whole) - 100])
    try:
        listed = {m["name"]: m for m in httpx.get(f"{served}/api/models").json()["models"]}
        assert not listed["cut.gguf"]["usable"] and "truncated" in listed["cut.gguf"]["reason"]
        for _ in range(2):  # every request is refused by our check, never by llama.cpp's loader
            _, events = converse(served, {**chat("Hi"), "model": "cut.gguf"})
            assert events[-1][0] == "error" and "still being copied" in events[-1][1]["message"]
        (folder / "cut.gguf").write_bytes(whole)  # the copy is complete: the same name now loads
        _, events = converse(served, {**chat("Hi", temperature=0, max_tokens=24), "model": "cut.gguf"})
        assert answer_of(events) == tm.ANSWER
    finally:
        (folder / "cut.gguf").unlink()


def test_errors_name_a_model_by_its_file_name_only(served: str, folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET KEY=hunter2")
    (folder / "linked.bin").symlink_to(secret)
    whole = (folder / "tiny.gguf").read_bytes()
    (folder / "short.gguf").write_bytes(whole[:64])
    try:
        listing = httpx.get(f"{served}/api/models").text
        said = [converse(served, {**chat("Hi"), "model": m})[1][-1][1]["message"] for m in ("linked.bin", "short.gguf")]
        folders = (str(folder), str(tmp_path), str(default_model_path().parent))
        for text in (listing, *said):
            assert not any(f in text for f in folders)
            assert b"SECR".hex() not in text and "SECRET" not in text
        assert "linked.bin" in said[0] and "short.gguf" in said[1]
    finally:
        (folder / "linked.bin").unlink()
        (folder / "short.gguf").unlink()


def test_a_crafted_huge_header_is_refused_and_never_stalls_health(served: str, folder: Path) -> None:
    crafted_header(folder / "huge.gguf", (MAX_HEADER >> 3) + 1000)  # just past the bound: the most parsing
    try:
        events, took = while_running(lambda: converse(served, {**chat("Hi"), "model": "huge.gguf"})[1],
                                     lambda: health_ms(served))
        assert events[-1][0] == "error" and f"over {MAX_HEADER >> 20} MiB" in events[-1][1]["message"]
        assert max(took) < 100, f"/health took {max(took):.0f} ms while a header was read"
    finally:
        (folder / "huge.gguf").unlink()


def test_a_description_is_kept_per_path_and_dropped_with_its_file(tmp_path: Path) -> None:
    tm.write_gguf(tmp_path / "default.gguf", "f32")
    tm.write_gguf(tmp_path / "other.gguf", "f32")
    settings = Settings(model_path=str(tmp_path / "default.gguf"), models_dir=str(tmp_path))
    models = Models(settings, lambda: None, lambda engine: None)  # type: ignore[arg-type,return-value]  # loads nothing
    for size in range(3):  # a file growing as it is copied in: one entry, its latest size
        (tmp_path / "growing.gguf").write_bytes(b"GGUF" + bytes(size))
        assert not models.files()["growing.gguf"].info.usable
    assert sorted(Path(p).name for p in models._described) == ["default.gguf", "growing.gguf", "other.gguf"]
    (tmp_path / "other.gguf").unlink()
    (tmp_path / "growing.gguf").unlink()
    models.files()
    assert [Path(p).name for p in models._described] == ["default.gguf"]


def test_the_header_reader_and_the_model_process_die_with_a_killed_server(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tm.write_gguf(path)
    proc, url = start_server("--model", str(path), env={"MODELS_DIR": str(tmp_path)})
    try:
        assert httpx.get(f"{url}/api/models").status_code == 200  # headers read: the reader runs
        readers = children(proc.pid)
        assert len(readers) >= 2  # the header reader, and the process the model is loaded in
        assert [m for pid in readers for m in mapped_models(pid)] == [str(path)]
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in readers), timeout=10)


# -- issue 23: a models folder by default --------------------------------------------------------


def test_the_models_folder_is_in_the_users_data_folder_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert models_folder(Settings()) == tmp_path / "data" / "snake_llama" / "models"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for unset in ("", "relative/data"):  # a relative XDG_DATA_HOME is to be ignored, says the spec
        monkeypatch.setenv("XDG_DATA_HOME", unset)
        assert models_folder(Settings()) == tmp_path / "home" / ".local" / "share" / "snake_llama" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert models_folder(Settings()) == tmp_path / "home" / ".local" / "share" / "snake_llama" / "models"
    assert models_folder(Settings(models_dir="~/mine")) == tmp_path / "home" / "mine"


def test_the_default_folder_is_made_when_first_read_and_a_set_one_never(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    tm.write_gguf(tmp_path / "default.gguf", "f32")
    models = Models(Settings(model_path=str(tmp_path / "default.gguf")), lambda: None, lambda e: None)  # type: ignore[arg-type,return-value]
    folder = tmp_path / "data" / "snake_llama" / "models"
    assert not folder.exists()  # nothing made before it is needed
    assert list(models.paths()) == ["default.gguf"] and folder.is_dir()
    configured = Settings(model_path=str(tmp_path / "default.gguf"), models_dir=str(tmp_path / "absent"))
    assert list(Models(configured, lambda: None, lambda e: None).paths()) == ["default.gguf"]  # type: ignore[arg-type,return-value]
    assert not (tmp_path / "absent").exists()


def test_any_name_is_the_default_until_the_folder_offers_a_choice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    tm.write_gguf(tmp_path / "default.gguf", "f32")
    models = Models(Settings(model_path=str(tmp_path / "default.gguf")), lambda: None, lambda e: None)  # type: ignore[arg-type,return-value]
    assert [models.resolve(n) for n in (None, "gpt-4", "any")] == ["default.gguf"] * 3
    folder = models_folder(models.settings)
    tm.write_gguf(folder / "other.gguf", "f32")
    assert models.resolve("other.gguf") == "other.gguf" and models.resolve(None) == "default.gguf"
    with pytest.raises(UnknownModel, match="no model named 'gpt-4'"):
        models.resolve("gpt-4")


def test_a_server_offers_its_data_folders_models_with_no_setting(tmp_path: Path) -> None:
    tm.write_gguf(tmp_path / "default.gguf", "f32", continuation="Default here.\n### Human:")
    proc, url = start_server("--model", str(tmp_path / "default.gguf"), env={"THREADS": "1"})
    try:
        folder = Path(proc.data_home) / "snake_llama" / "models"  # the harness's, never the user's
        assert folder.is_dir()  # made as the server started
        _, events = converse(url, {**chat("Hi", temperature=0, max_tokens=8), "model": "gpt-4"})
        assert answer_of(events) == "Default here." and events[-1][1]["model"] == "default.gguf"
        tm.write_gguf(folder / "dropped.gguf", "f32")
        listing = httpx.get(f"{url}/api/models").json()
        assert listing["default"] == "default.gguf"
        assert [m["name"] for m in listing["models"]] == ["default.gguf", "dropped.gguf"]
        _, events = converse(url, {**chat("Hi", temperature=0, max_tokens=24), "model": "dropped.gguf"})
        assert answer_of(events) == tm.ANSWER and events[-1][1]["model"] == "dropped.gguf"
        status, events = converse(url, {**chat("Hi"), "model": "gpt-4"})  # a choice now: refused
        assert status == 404 and events[0][1]["error"]["type"] == "model_not_found"
    finally:
        stop_server(proc)


# -- a model's process that ends under it ---------------------------------------------------------


def model_process(server: int) -> int:
    """The one process of the server's that has a model mapped."""
    (pid,) = [one for one in children(server) if mapped_models(one) and one != server]
    return pid


def test_a_model_whose_process_is_killed_mid_answer_says_so_and_loads_again() -> None:
    """The model's process killed while it answers (as the kernel's out-of-memory killer would):
    that answer ends with an error that says what happened, and the next request loads the model
    again and is answered, with nothing in the log but one line about it."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto"})
    try:
        first = model_process(proc.pid)
        body = chat(COUNT, max_tokens=400, temperature=0.0, repeat_penalty=1.0)
        with httpx.stream("POST", f"{url}/api/converse", json=body, timeout=120) as response:
            events = iter_sse(response)
            next(e for e in events if e[0] == "token")
            os.kill(first, signal.SIGKILL)
            rest = [(name, json.loads(data)) for name, data in events]
        assert rest[-1][0] == "error", rest[-3:]
        assert "the model's process ended (killed by signal 9)" in rest[-1][1]["message"]

        status, again = converse(url, chat("Hi", max_tokens=8))
        assert status == 200 and again[-1][0] == "done" and answer_of(again)
        assert model_process(proc.pid) != first
    finally:
        stop_server(proc)
    log = Path(proc.log_path).read_text()
    assert log.count("it loads again for the next request") == 1 and "Traceback" not in log, log[-2000:]
