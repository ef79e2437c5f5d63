"""The shared model under load, on a tiny model that never stops on its own (so timing is ours)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import chat, idle, run_async, start_looping_server, stop_server, wait_until

LONG = 20_000  # tokens: far more than any test waits for; cancelled when each test ends


@pytest.fixture(scope="module")
def looping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # one slot, so that queueing shows
    # a hang-up cancels at once (no grace for the page to come back): what these tests measure
    proc, url = start_looping_server(tmp_path_factory.mktemp("loop"), QUEUE_SIZE="2", PARALLEL="1", ANSWER_GRACE_S="0")
    yield url
    stop_server(proc)


async def first_event(client: httpx.AsyncClient, url: str, max_tokens: int) -> tuple[httpx.Response, str, float]:
    """Open a converse stream; return it, its first event's name after the answer's id, and the time it took."""
    started = time.perf_counter()
    request = client.build_request("POST", f"{url}/api/converse", json=chat("go", max_tokens=max_tokens))
    response = await client.send(request, stream=True)
    if response.status_code != 200:
        return response, "", 0.0
    # Keep the line iterator alive with the response: a dropped iterator closes the connection.
    lines = response.aiter_lines()
    response.extensions["lines"] = lines
    async for line in lines:
        if line.startswith("event:") and line != "event: answer":
            return response, line[6:].strip(), time.perf_counter() - started
    raise AssertionError("stream ended without an event")


async def first_token(client: httpx.AsyncClient, url: str, max_tokens: int) -> tuple[httpx.Response, float]:
    """Open a converse stream and read it up to its first token, through `queued` events if the
    model is still finishing a request that was just cancelled; return it and the time taken."""
    started = time.perf_counter()
    response, name, _ = await first_event(client, url, max_tokens)
    async for line in response.extensions["lines"]:
        if name == "token":
            break
        if line.startswith("event:"):
            name = line[6:].strip()
    assert name == "token"
    return response, time.perf_counter() - started


async def tokens_per_second(response: httpx.Response, n: int) -> float:
    """The rate of a streaming answer, over its next `n` tokens."""
    started, seen = time.perf_counter(), 0
    async for line in response.extensions["lines"]:
        seen += line.startswith("event: token")
        if seen == n:
            break
    return n / (time.perf_counter() - started)


async def time_to_first_token(client: httpx.AsyncClient, url: str) -> float:
    response, elapsed = await first_token(client, url, 5)
    await response.aclose()
    return elapsed


def test_disconnect_frees_the_model_for_the_next_request(looping: str) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            response, _ = await first_token(client, looping, LONG)
            rate = await tokens_per_second(response, 50)
            await response.aclose()  # the tab closed mid-answer
            # Without cancellation the one slot would stay busy for the rest of the 20,000 tokens
            # and the next request would wait behind them.
            started = time.perf_counter()
            nxt, _ = await first_token(client, looping, 5)
            assert time.perf_counter() - started < LONG / rate / 4
            await nxt.aclose()

    run_async(main())


def test_queue_positions_then_503_when_full(looping: str) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            running, _ = await first_token(client, looping, LONG)
            waiting = [await first_event(client, looping, 5) for _ in range(2)]
            assert [w[1] for w in waiting] == ["queued", "queued"]
            full, _, _ = await first_event(client, looping, 5)
            assert full.status_code == 503
            assert int(full.headers["retry-after"]) > 0
            await full.aread()
            assert full.json()["error"]["type"] == "queue_full"
            for response in [running, *(w[0] for w in waiting)]:
                await response.aclose()
            # A place is taken the moment a request arrives, so wait until the server has seen the hang-ups
            wait_until(lambda: idle(looping))
            await time_to_first_token(client, looping)  # everything was released

    run_async(main())


def test_health_answers_fast_while_the_model_generates(looping: str) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            running, _ = await first_token(client, looping, LONG)
            for _ in range(10):  # how fast is measured by `make bench`; here: it answers at all
                assert (await client.get(f"{looping}/health")).json()["status"] == "ok"
            async for line in running.extensions["lines"]:  # and the answer streamed on meanwhile
                if line.startswith("event: token"):
                    break
            else:
                raise AssertionError("the answer stopped")
            await running.aclose()

    run_async(main())
