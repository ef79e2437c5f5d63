"""Several models from one folder, chosen per chat: the real default model (by symlink), a tiny
model the tests write, and files that are no models."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.default_model import default_model_path
from server.models import describe
from server.settings import Settings
from tests import tinymodels as tm
from tests.harness import aiter_sse, answer_of, chat, converse, run_async, start_server, stop_server

DEFAULT = default_model_path().name


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
