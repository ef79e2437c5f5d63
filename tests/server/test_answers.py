"""Answers that outlive their page: read again by id, stopped by request, cancelled when nobody
comes back (server.answers).

The registry's logic runs first on the real scheduler with a scripted engine; then the real
server with the real default model. Its long answer is a count it keeps going on (greedy, no
repeat penalty: the next number always follows), so an answer is still running when a test
hangs up, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from server.answers import KEEP_FINISHED, Admitted, AnswerLog, Answers, compact
from server.events import Done, Event, Failed, Loading, Queued, Text, Thought
from server.scheduler import Scheduler
from tests.fakes import ScriptedEngine, admit
from tests.harness import (
    COUNT,
    aiter_sse,
    answer_of,
    chat,
    hang_up,
    idle,
    metrics,
    run_async,
    start_server,
    stop_server,
    wait_until,
)
from wire.routes import ANSWER, STOP_ANSWER

# -- the registry, on the real scheduler with a scripted engine --------------------------------


def scripted(max_tokens: int, parallel: int = 1) -> tuple[Scheduler, Callable[[], Admitted]]:
    """A scheduler, and a way to admit one answer of `max_tokens` words to it."""
    scheduler = Scheduler(ScriptedEngine(parallel=parallel), queue_size=8)

    def source() -> Admitted:
        return scheduler, admit(scheduler, "p", max_tokens)

    return scheduler, source


async def read_all(answers: Answers, answer: AnswerLog) -> list[Event]:
    return [event async for event in answers.read(answer)]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Text))


def test_a_fault_before_the_model_runs_is_this_answer_s_error_event() -> None:
    async def failing() -> Admitted | Failed:
        raise RuntimeError("the template broke")

    async def main() -> None:
        answers = Answers(grace_s=30)
        answer = answers.start("m", failing())
        events = await read_all(answers, answer)
        assert events[0] == Loading("m")
        assert events[1] == Failed("internal_error", "the answer could not be started: the template broke")
        assert len(events) == 2 and answer.ended  # it ended, and its readers were told why

    run_async(main())


def test_two_readers_and_a_late_one_see_the_whole_answer() -> None:
    async def main() -> None:
        scheduler, source = scripted(20)
        answers = Answers(grace_s=30)
        answer = answers.start("scripted", source())
        first, second = await asyncio.gather(read_all(answers, answer), read_all(answers, answer))
        late = await read_all(answers, answer)  # after it ended: the log, text in one piece
        whole = " ".join(f"w{i}" for i in range(20))  # the stop filter holds back trailing space
        for events in (first, second, late):
            assert isinstance(events[0], Text) and text_of(events) == whole
            assert isinstance(events[-1], Done) and events[-1].stop_reason == "length"
        assert len(late) == 2 and len(first) > 2
        scheduler.close()

    run_async(main())


def test_compact_joins_runs_of_text_only() -> None:
    events: list[Event] = [Loading("m"), Queued(1), Text("a"), Text("b"), Queued(1)]
    assert compact(events) == [Loading("m"), Queued(1), Text("ab"), Queued(1)]
    thinking: list[Event] = [Thought("x"), Thought("y"), Text("a"), Text("b"), Thought("z")]
    assert compact(thinking) == [Thought("xy"), Text("ab"), Thought("z")]  # kinds never mix


def test_stop_ends_a_running_answer_with_its_done_and_a_queued_one_with_ours() -> None:
    async def main() -> None:
        scheduler, source = scripted(10_000)
        answers = Answers(grace_s=30)
        running, waiting = answers.start("scripted", source()), answers.start("scripted", source())
        reader = answers.read(running)
        while not isinstance(await anext(reader), Text):
            pass
        waiting.stop()
        running.stop()
        rest = [event async for event in reader]
        assert isinstance(rest[-1], Done) and rest[-1].stop_reason == "cancelled"
        assert rest[-1].completion_tokens < 100 and rest[-1].model == "scripted"
        queued = await read_all(answers, waiting)
        assert queued[-1] == Done("cancelled", 0, 0, None, None, model="scripted")
        assert not [e for e in queued if isinstance(e, Text)]
        await asyncio.gather(*(a.task for a in (running, waiting) if a.task))
        assert answers.running == 0
        scheduler.close()

    run_async(main())


def test_nobody_back_within_the_grace_period_cancels_and_forgets() -> None:
    async def main() -> None:
        scheduler, source = scripted(10_000)
        answers = Answers(grace_s=0.2)
        answer = answers.start("scripted", source())
        reader = answers.read(answer)
        while not isinstance(await anext(reader), Text):
            pass
        await hang_up(reader)  # the page went away
        assert answers.unwatched == 1 and answers.get(answer.id) is answer
        await scheduler.idle()  # the grace period ends, the job is cancelled
        assert answers.get(answer.id) is None
        assert isinstance(answer.log[-1], Done) and answer.log[-1].stop_reason == "cancelled"
        scheduler.close()

    run_async(main())


def test_a_reader_back_within_the_grace_period_carries_on() -> None:
    async def main() -> None:
        scheduler, source = scripted(30)
        answers = Answers(grace_s=0.2)
        answer = answers.start("scripted", source())
        reader = answers.read(answer)
        await anext(reader)
        await hang_up(reader)
        events = await read_all(answers, answer)  # back at once: the answer never stopped
        assert isinstance(events[-1], Done) and events[-1].stop_reason == "length"
        assert answers.get(answer.id) is answer  # read again for a grace period more...
        while answers.get(answer.id) is not None:  # ...then forgotten
            await asyncio.sleep(0.05)
        scheduler.close()

    run_async(main())


def test_no_grace_cancels_on_hang_up() -> None:
    async def main() -> None:
        scheduler, source = scripted(10_000)
        answers = Answers(grace_s=0)
        answer = answers.start("scripted", source())
        reader = answers.read(answer)
        await anext(reader)
        await hang_up(reader)
        assert answers.get(answer.id) is None
        await scheduler.idle()
        assert isinstance(answer.log[-1], Done) and answer.log[-1].stop_reason == "cancelled"
        scheduler.close()

    run_async(main())


def test_finished_answers_kept_are_bounded() -> None:
    async def main() -> None:
        scheduler, source = scripted(1, parallel=8)
        answers = Answers(grace_s=30)
        started: list[AnswerLog] = []
        while len(started) < KEEP_FINISHED + 5:  # a few at a time: the scheduler's queue is short
            batch = [answers.start("scripted", source()) for _ in range(4)]
            await asyncio.gather(*(a.task for a in batch if a.task))
            started += batch
        answers.start("scripted", source())  # a new answer makes room
        kept = [a for a in started if answers.get(a.id) is not None]
        assert kept == started[-KEEP_FINISHED:]  # the oldest went first
        answers.close()
        scheduler.close()

    run_async(main())


# -- the real server and model -------------------------------------------------------------------

def counting(max_tokens: int) -> dict[str, Any]:
    return chat(COUNT, max_tokens=max_tokens, temperature=0, repeat_penalty=1.0)


async def open_answer(client: httpx.AsyncClient, url: str, body: Any, tokens: int) -> tuple[str, str, Any]:
    """POST an answer and read it up to its `tokens`-th token; its id, its text so far, and the
    open event stream (closing it is the page going away)."""
    response = await client.send(client.build_request("POST", f"{url}/api/converse", json=body), stream=True)
    events = aiter_sse(response)
    name, data = await anext(events)
    assert name == "answer"
    answer_id = json.loads(data)["id"]
    text, seen = "", 0
    while seen < tokens:
        name, data = await anext(events)
        if name == "token":
            seen += 1
            text += json.loads(data)["text"]
    return answer_id, text, (response, events)


async def rest_of(stream: Any) -> list[tuple[str, Any]]:
    return [(name, json.loads(data)) async for name, data in stream[1]]


async def read_again(client: httpx.AsyncClient, url: str, answer_id: str) -> tuple[int, list[tuple[str, Any]]]:
    async with client.stream("GET", url + ANSWER.url(answer_id=answer_id)) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, [("http_error", response.json())]
        return 200, [(name, json.loads(data)) async for name, data in aiter_sse(response)]


def test_a_page_that_comes_back_gets_the_whole_answer_generated_once(live_server: str) -> None:
    url = live_server
    wait_until(lambda: idle(url))
    before = metrics(url)

    async def main() -> tuple[str, str, list[tuple[str, Any]]]:
        async with httpx.AsyncClient(timeout=300) as client:
            answer_id, seen, stream = await open_answer(client, url, counting(40), tokens=3)
            await stream[0].aclose()  # the page reloads
            status, events = await read_again(client, url, answer_id)
            assert status == 200
            return answer_id, seen, events

    answer_id, seen, events = run_async(main())
    names = [name for name, _ in events]
    assert events[0] == ("answer", {"id": answer_id})
    assert names.count("done") == 1 and names[-1] == "done" and set(names[1:-1]) == {"token"}
    text = answer_of(events)
    assert text.startswith(seen) and len(text) > len(seen)
    done = events[-1][1]
    assert done["stop_reason"] == "length" and done["completion_tokens"] == 40  # it went on while nobody read
    after = metrics(url)
    assert after["snake_llama_answers_total"] == before["snake_llama_answers_total"] + 1  # generated once
    assert after["snake_llama_tokens_generated_total"] == before["snake_llama_tokens_generated_total"] + 40


def test_stop_cancels_at_once_and_frees_the_model(live_server: str) -> None:
    url = live_server
    wait_until(lambda: idle(url))

    async def main() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], int]:
        async with httpx.AsyncClient(timeout=300) as client:
            answer_id, _, stream = await open_answer(client, url, counting(2000), tokens=1)
            stopped = await client.post(url + STOP_ANSWER.url(answer_id=answer_id))
            assert stopped.status_code == 204
            rest = await rest_of(stream)  # the page that asked is still reading
            await stream[0].aclose()
            status, again = await read_again(client, url, answer_id)  # finished: still readable a while
            assert status == 200
            return rest, again, (await client.post(url + STOP_ANSWER.url(answer_id=answer_id))).status_code

    rest, again, stop_again = run_async(main())
    assert rest[-1][0] == "done" and rest[-1][1]["stop_reason"] == "cancelled"
    assert rest[-1][1]["completion_tokens"] < 2000
    assert again[-1] == rest[-1] and stop_again == 204  # stopping an ended answer changes nothing
    wait_until(lambda: idle(url), timeout=10)


def test_unknown_and_odd_answer_ids_are_404s(live_server: str) -> None:
    for answer_id in ["nope", "x" * 5000, "%00", "a.b", "é"]:
        got = httpx.get(live_server + ANSWER.url(answer_id=answer_id))
        assert got.status_code == 404 and got.json()["error"]["type"] == "answer_not_found", answer_id
        stopped = httpx.post(live_server + STOP_ANSWER.url(answer_id=answer_id))
        assert stopped.status_code == 404 and stopped.json()["error"]["type"] == "answer_not_found", answer_id
    assert httpx.get(live_server + STOP_ANSWER.url(answer_id="nope")).status_code == 405
    slashed = httpx.get(live_server + ANSWER.url(answer_id="a%2Fb"))  # no such route: a plain JSON 404
    assert slashed.status_code == 404 and slashed.json()["error"]["type"] == "not_found"
    assert httpx.get(live_server + "/api/answers").status_code == 404


@pytest.fixture(scope="module")
def short_grace() -> Iterator[str]:
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "ANSWER_GRACE_S": "1"})
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def no_grace() -> Iterator[str]:
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "ANSWER_GRACE_S": "0"})
    yield url
    stop_server(proc)


@pytest.mark.parametrize("grace", ["short_grace", "no_grace"])
def test_nobody_coming_back_cancels_the_answer(grace: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(grace)
    cancelled = "snake_llama_answers_total{stop_reason=cancelled}"
    before = metrics(url)[cancelled]

    async def main() -> str:
        async with httpx.AsyncClient(timeout=300) as client:
            answer_id, _, stream = await open_answer(client, url, counting(2000), tokens=1)
            await stream[0].aclose()  # the tab closed, and nobody comes back
            return answer_id

    answer_id = run_async(main())
    wait_until(lambda: idle(url) and metrics(url)[cancelled] == before + 1)
    gone = httpx.get(url + ANSWER.url(answer_id=answer_id))
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "answer_not_found"
