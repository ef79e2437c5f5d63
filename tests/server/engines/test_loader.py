"""Each local engine end to end through the real server and /api/converse, on tiny model files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import tinymodels as tm
from tests.harness import answer_of, chat, converse, run_server, start_server, stop_server

WORLD = "你好，世界！🌍🎉 こんにちは 👩‍👩‍👧"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    paths = {"ggjt": d / "tiny.ggmlv3.q8_0.bin", "gguf": d / "tiny.gguf"}
    tm.write_ggjt(paths["ggjt"], "q8_0")
    tm.write_gguf(paths["gguf"], "f16")
    return paths


@pytest.fixture(scope="module", params=["ggjt-auto", "gguf-ctransformers", "gguf-auto"])
def served(request: pytest.FixtureRequest, tiny: dict[str, Path]) -> Iterator[tuple[str, str]]:
    kind, engine = request.param.split("-")
    proc, url = start_server("--model", str(tiny[kind]), "--engine", engine, "--n-ctx", "1024")
    yield url, {"ggjt-auto": "ctransformers", "gguf-ctransformers": "ctransformers"}.get(
        request.param, "llama-cpp"
    )
    stop_server(proc)


def test_health_names_the_engine_picked(served: tuple[str, str]) -> None:
    url, engine = served
    assert httpx.get(f"{url}/health").json()["engine"] == engine


def test_exact_answer_and_stop_at_human_turn(served: tuple[str, str]) -> None:
    url, _ = served
    status, events = converse(url, chat("What is the capital of France?", temperature=0, max_tokens=40))
    assert status == 200
    assert answer_of(events) == tm.ANSWER
    assert events[-1][0] == "done" and events[-1][1]["stop_reason"] == "stop"


def test_chinese_and_emoji_input_is_answered(served: tuple[str, str]) -> None:
    url, _ = served
    for _ in range(3):
        status, events = converse(url, chat(WORLD * 4, temperature=0, max_tokens=40))
        assert status == 200 and answer_of(events) == tm.ANSWER
    assert httpx.get(f"{url}/health").status_code == 200


def test_startup_errors_are_one_clear_line_and_exit_2(tmp_path: Path, tiny: dict[str, Path]) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"NOPE" + bytes(100))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny["gguf"].read_bytes()[:200])
    cut_data = tmp_path / "cut-data.gguf"
    cut_data.write_bytes(tiny["gguf"].read_bytes()[:-4096])
    cases = {
        "missing": (["--model", str(tmp_path / "absent.gguf")], "not found"),
        "directory": (["--model", str(tmp_path)], str(tmp_path)),
        "unknown magic": (["--model", str(garbage)], "garbage.bin"),
        "wrong model type": (["--model", str(tiny["ggjt"]), "--model-type", "falcon"], "MODEL_TYPE"),
        "truncated": (["--model", str(truncated), "--engine", "ctransformers"], "truncated.gguf"),
        "cut data": (["--model", str(cut_data)], "cut-data.gguf"),
        "n_ctx beyond training": (
            ["--model", str(tiny["gguf"]), "--n-ctx", "65536", "--kv-pool", "65536"], "N_CTX=65536"
        ),
        "pool beyond memory": (["--kv-pool", "16000000", "--n-ctx", "32768"], "KV_POOL=16000000"),
        "draft of another vocabulary": (["--speculative", f"draft:{tiny['gguf']}"], "same vocabulary"),
    }
    for case, (args, needle) in cases.items():
        result = run_server("--port", "1", *args)
        assert result.returncode == 2, (case, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("snake_llama: error:")]
        assert len(lines) == 1 and needle in lines[0], (case, result.stderr)
        assert "Traceback" not in result.stderr, case


def test_openai_fields_an_engine_cannot_honour_are_refused_by_name(served: tuple[str, str]) -> None:
    url, engine = served
    question = [{"role": "user", "content": "What is the capital of France?"}]
    extras: dict[str, dict[str, Any]] = {
        "tools": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        "response_format": {"response_format": {"type": "json_object"}},
    }
    for name, extra in extras.items():
        reply = httpx.post(f"{url}/v1/chat/completions", json={"messages": question, "max_tokens": 8, **extra})
        if engine == "ctransformers":
            assert reply.status_code == 400, name
            assert reply.json()["error"]["code"] == "unsupported_parameter" and name in reply.json()["error"]["message"]
        else:
            assert reply.status_code == 200, (name, reply.text)
