"""Admission on the real server: one bound on a chat's length at every front door, a queue place
taken before the costly work of fitting a chat into the context, and a cap per client address."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import openai
import pytest

from tests.harness import chat, converse, idle, metrics, start_looping_server, stop_server, wait_until
from wire.routes import CONVERSE, STOP_ANSWER
from wire.types import MAX_MESSAGES


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One slot and one queue place, within reach of a test."""
    proc, url = start_looping_server(tmp_path_factory.mktemp("tight"), n_ctx=2048, PARALLEL="1", QUEUE_SIZE="1")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two answers per address; an answer whose client went away goes on, holding its place."""
    proc, url = start_looping_server(
        tmp_path_factory.mktemp("capped"), PARALLEL="1", MAX_ANSWERS_PER_CLIENT="2", ANSWER_GRACE_S="600"
    )
    yield url
    stop_server(proc)


def long_chat(turns: int, name: str = "", **params: Any) -> dict[str, Any]:
    """A chat of `turns` long messages, whose fitting into the context takes seconds: each
    message its own (a message seen before is counted once)."""
    return chat(*(f"{name} {i}: " + "tick tock " * 40 for i in range(turns - 1)), "tick", **params)


def test_every_front_door_takes_at_most_max_messages(tight: str) -> None:
    body = chat(*("hi" for _ in range(MAX_MESSAGES + 1)), max_tokens=1)
    status, events = converse(tight, body)
    assert status == 400 and "messages" in events[0][1]["error"]["message"]
    client = openai.OpenAI(base_url=f"{tight}/v1", api_key="none", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="", messages=messages, max_tokens=1)
    answer = client.chat.completions.create(model="", messages=messages[:MAX_MESSAGES], max_tokens=1)
    assert answer.choices[0].message.content is not None  # the bound itself is taken


def test_chats_being_fitted_hold_queue_places(tight: str) -> None:
    """Two long chats take the one slot and the one queue place while they are fitted into the
    context: a third request is refused at once, before any work is done for it."""
    wait_until(lambda: idle(tight))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        long = [pool.submit(converse, tight, long_chat(300, f"chat {i}", max_tokens=1)) for i in range(2)]
        wait_until(lambda: metrics(tight)["snake_llama_queue_depth"] == 2, timeout=30, interval=0.02)
        status, events = converse(tight, chat("tick", max_tokens=1))
        assert status == 503 and events[0][1]["error"]["type"] == "queue_full"
        assert all(f.result()[0] == 200 for f in long)
    status, _ = converse(tight, chat("tick", max_tokens=1))
    assert status == 200  # the places came back


def test_one_address_holds_at_most_its_cap(capped: str) -> None:
    """Clients that start answers and go away hold at most the cap of one address's places."""
    wait_until(lambda: idle(capped))
    started = [start_answer(capped) for _ in range(2)]  # one runs, one waits: until stopped
    status, events = converse(capped, chat("tick", max_tokens=1))
    assert status == 429 and events[0][1]["error"]["type"] == "too_many_answers"
    stop(capped, started.pop(0))
    wait_until(lambda: metrics(capped)["snake_llama_answers_running"] == 1)  # the waiting one runs now
    started.append(start_answer(capped))  # a place came back
    for answer in started:
        stop(capped, answer)


def start_answer(url: str) -> str:
    """Start an answer that runs until stopped, and hang up once its first event names it."""
    with httpx.stream("POST", url + CONVERSE.path, json=chat("tick", max_tokens=30_000), timeout=30) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data:"):
                return str(msgspec.json.decode(line[5:])["id"])
    raise AssertionError("no answer id")


def stop(url: str, answer: str) -> None:
    httpx.post(url + STOP_ANSWER.path.format(answer_id=answer)).raise_for_status()
