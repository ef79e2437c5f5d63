"""Named keys on the real server: slots shared fairly between names, a cap per name, and answers,
tokens and waits counted by name (never by the key itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.harness import (
    Popen,
    chat,
    metrics,
    run_async,
    run_server,
    start_looping_server,
    stop_server,
    wait_until,
)

KEYS = {"alice": "alice-k3y", "bob": "bob-k3y"}
API_KEYS = ",".join(f"{name}:{key}" for name, key in KEYS.items())
N = 1000  # tokens per answer: the looping model never stops, so every answer is exactly this long
BURST = 12


def started(folder: Path, **env: str) -> tuple[Popen, str]:
    settings = {"API_KEYS": API_KEYS, "PARALLEL": "2", "QUEUE_SIZE": "16", "OPEN_STATUS": "true", **env}
    return start_looping_server(folder, 32768, **settings)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    proc, url = started(tmp_path_factory.mktemp("fair"))
    yield url, Path(proc.log_path)
    stop_server(proc)


def client(url: str, name: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEYS[name], max_retries=0, timeout=120)


async def answer(c: openai.AsyncOpenAI, tokens: int = N) -> float:
    """One whole answer; the seconds it took."""
    began = time.perf_counter()
    await c.chat.completions.create(model="any", messages=[{"role": "user", "content": "go"}], max_tokens=tokens)
    return time.perf_counter() - began


async def first_token(c: openai.AsyncOpenAI) -> float:
    began = time.perf_counter()
    stream = await c.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "go"}], max_tokens=5, stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()
    return time.perf_counter() - began


def test_a_second_name_is_served_about_one_answer_behind_a_burst(shared: tuple[str, Path]) -> None:
    url, log = shared

    async def main() -> tuple[float, float]:
        # closed on this loop: a client left to the collector closes itself on whatever loop runs then
        async with client(url, "alice") as alice, client(url, "bob") as bob:
            one = await answer(alice)
            burst = [asyncio.create_task(answer(alice)) for _ in range(BURST)]
            # every answer of the burst is running or waiting before bob asks
            await asyncio.to_thread(wait_until, lambda: metrics(url)["snake_llama_queue_depth"] == BURST - 2)
            waited = await first_token(bob)
            await asyncio.gather(*burst)
            return one, waited

    one, waited = run_async(main())
    # First come, first served, bob would wait for the whole burst: BURST / 2 answers' time
    print(f"one answer {one:.2f} s; bob's first token {waited:.2f} s behind a burst of {BURST}")
    assert waited < 2 * one
    seen = metrics(url)
    assert seen["snake_llama_key_answers_total{key=alice}"] == BURST + 1
    assert seen["snake_llama_key_answers_total{key=bob}"] == 1
    assert seen["snake_llama_key_tokens_total{key=alice}"] > (BURST + 1) * N  # prompts and completions
    assert seen["snake_llama_key_queue_wait_seconds_count{key=alice}"] == BURST + 1
    assert seen["snake_llama_key_requests_total{key=bob}"] == 1
    text = log.read_text()
    assert "key=alice" in text and "key=bob" in text
    assert not any(key in text for key in KEYS.values())


def test_key_parallel_caps_one_names_running_answers(tmp_path: Path) -> None:
    proc, url = started(tmp_path, KEY_PARALLEL="1")

    def first_event(name: str, client: httpx.Client) -> tuple[httpx.Response, str]:
        request = client.build_request("POST", f"{url}/api/converse", json=chat("go", max_tokens=20_000),
                                       headers={"Authorization": f"Bearer {KEYS[name]}"})
        response = client.send(request, stream=True)
        lines = (line for line in response.iter_lines() if line.startswith("event:") and line != "event: answer")
        return response, next(lines)

    try:
        with httpx.Client(timeout=60) as c:
            opened = [first_event("alice", c) for _ in range(2)]
            assert [event for _, event in opened] == ["event: token", "event: queued"]  # a slot stays free...
            bobs, event = first_event("bob", c)
            assert event == "event: token"  # ...for another name
            for response, _ in [*opened, (bobs, event)]:
                response.close()
    finally:
        stop_server(proc)


def test_malformed_named_keys_are_one_clear_line() -> None:
    for bad in ("alice", "alice:k,alice:j", "a:k,b:k", "default:k", "bad name:k"):
        result = run_server(env={"API_KEYS": bad})
        assert result.returncode == 2 and "API_KEYS" in result.stderr and "Traceback" not in result.stderr, bad
