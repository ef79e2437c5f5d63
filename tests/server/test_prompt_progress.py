"""A long prompt on the real engine: progress while it is read, and Stop or a hang-up in the
middle of it frees the one slot at once (server/engines/llama_cpp_engine.py asks llama.cpp for
a chunk per batch; server/scheduler.py cancels at the next one).

The model is the real default one with one slot, so the next chat can only start once the long
prompt's reading has stopped. Each test measures, in the same run, how fast this machine reads
the prompt, and asserts that the next chat's first token comes well before the whole prompt
could have been read.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.harness import chat, iter_sse, start_server, stop_server
from wire.routes import STOP_ANSWER

# About 3,300 tokens (a word each): a minute or more on a real model, 10-15 s on the demo one.
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "again"]


@pytest.fixture(scope="module")
def one_slot() -> Iterator[str]:
    proc, url = start_server(env={"MODEL_PATH": "", "PARALLEL": "1", "N_CTX": "4096", "KV_POOL": "4096"})
    yield url
    stop_server(proc)


def long_text() -> str:
    """Text no earlier prompt shares more than a few words with, so that no cache shortens its reading."""
    pick = random.Random(secrets.token_bytes(8)).choice
    return " ".join(pick(WORDS) for _ in range(3_300))


def first_token_at(url: str) -> float:
    """When (time.perf_counter) a short chat's first token came (or its end, had it none)."""
    body = chat("What is the capital of France?", max_tokens=4)
    with httpx.stream("POST", f"{url}/api/converse", json=body, timeout=120) as response:
        for name, _ in iter_sse(response):
            assert name != "error"
            if name in ("token", "done"):
                return time.perf_counter()
    raise AssertionError("the answer ended without a token")


def read_until_progress(events: Iterator[tuple[str, str]]) -> tuple[str, dict[str, Any], float]:
    """The answer's id, its first progress event, and how long reading the whole prompt would take
    at the speed that event shows."""
    started = time.perf_counter()
    answer_id = ""
    for name, data in events:
        event = json.loads(data)
        if name == "answer":
            answer_id = event["id"]
        elif name == "progress":
            read = event["processed"] - event["cached"]
            assert read > 0 and event["processed"] < event["total"]
            whole_s = (time.perf_counter() - started) * (event["total"] - event["cached"]) / read
            return answer_id, event, whole_s
        elif name in ("token", "done", "error"):
            raise AssertionError(f"{name} before any progress: the prompt was not read in batches")
    raise AssertionError("the stream ended before any progress")


def test_progress_while_a_long_prompt_is_read_and_stop_frees_the_slot(one_slot: str) -> None:
    body = chat(long_text(), max_tokens=8)
    with httpx.stream("POST", f"{one_slot}/api/converse", json=body, timeout=300) as response:
        events = iter_sse(response)
        answer_id, progress, whole_s = read_until_progress(events)
        assert progress["total"] > 3_000
        stopped = httpx.post(one_slot + STOP_ANSWER.url(answer_id=answer_id), timeout=30)
        assert stopped.status_code == 204
        stopped_at = time.perf_counter()
        rest = [name for name, _ in events]
    assert rest[-1] == "done" and "token" not in rest
    waited = first_token_at(one_slot) - stopped_at
    assert waited < whole_s / 2, (waited, whole_s)


def test_an_openai_client_hanging_up_while_its_prompt_is_read_frees_the_slot(one_slot: str) -> None:
    # this machine's reading speed, measured now on a prompt of the same size
    with httpx.stream("POST", f"{one_slot}/api/converse", json=chat(long_text(), max_tokens=8), timeout=300) as r:
        answer_id, _, whole_s = read_until_progress(iter_sse(r))
        httpx.post(one_slot + STOP_ANSWER.url(answer_id=answer_id), timeout=30)
    client = openai.OpenAI(base_url=f"{one_slot}/v1", api_key="none", max_retries=0)
    stream = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": long_text()}], max_tokens=8, stream=True
    )
    first = next(iter(stream))  # the role chunk: the answer is admitted and its prompt being read
    assert first.choices[0].delta.role == "assistant"
    stream.close()  # the client hangs up
    hung_up = time.perf_counter()
    waited = first_token_at(one_slot) - hung_up
    assert waited < whole_s / 2, (waited, whole_s)
