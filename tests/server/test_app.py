"""The real app on loopback with the real default model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from server.prompt import STOP_MARKERS
from server.settings import Settings
from tests.harness import answer_of, chat, converse, run_async, start_server, stop_server


def test_health_names_engine_and_model(live_server: str) -> None:
    r = httpx.get(f"{live_server}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["engine"] == "llama-cpp"
    assert body["model"] == "gemma-3-270m-q4_k_m.gguf"
    assert body["model_path"].endswith("gemma-3-270m-q4_k_m.gguf")


def test_converse_streams_tokens_then_done(live_server: str) -> None:
    status, events = converse(live_server, chat("What is the capital of Germany?", temperature=0, max_tokens=48))
    assert status == 200
    names = [name for name, _ in events]
    assert names[-1] == "done" and names.count("done") == 1
    assert names[0] == "answer" and set(names[1:-1]) == {"token"} and len(names) > 3
    done = events[-1][1]
    assert done["stop_reason"] in ("stop", "length")
    assert done["prompt_tokens"] > 40
    assert done["prompt_tokens_evaluated"] >= 1
    assert 1 <= done["completion_tokens"] <= 48
    assert done["ttft_s"] > 0
    assert answer_of(events).strip()


@pytest.mark.parametrize(
    "question",
    ["What is the capital of Italy?", "Tell me a joke.", "Say hello.", "List three colours.", "Who are you?"],
)
def test_stop_marker_never_leaks(live_server: str, question: str) -> None:
    status, events = converse(live_server, chat(question, temperature=0, max_tokens=96))
    assert status == 200
    answer = answer_of(events)
    for marker in STOP_MARKERS:
        assert marker not in answer
        assert not any(marker.startswith(answer[-k:]) for k in range(1, len(marker)) if answer)
    assert events[-1][0] == "done"


def test_base_model_stops_at_human_turn(live_server: str) -> None:
    # The base model continues the few-shot chat with "### Human:" after a short answer.
    status, events = converse(live_server, chat("What is the capital of Spain?", temperature=0, max_tokens=200))
    assert events[-1][1]["stop_reason"] == "stop"
    assert events[-1][1]["completion_tokens"] < 200


COUNTED = ", ".join(str(i) for i in range(1, 101))


def test_a_request_silent_on_repeat_penalty_repeats_a_list(live_server: str) -> None:
    # With a repeat penalty (the old default of 1.1) the model answers "Yes - I count from 1 to 100."
    body = chat("Count from 1 to 100.", COUNTED, "Count from 1 to 100 again.", temperature=0, max_tokens=320)
    _, events = converse(live_server, body)
    assert COUNTED[:200] in answer_of(events)
    # SPECULATIVE=auto (the default) drafts such a repeat from the chat, and says how well in `done` and /metrics
    assert events[-1][1]["draft_acceptance"] > 0.5
    assert "snake_llama_draft_acceptance_count{" in httpx.get(f"{live_server}/metrics").text


def test_same_seed_same_answer(live_server: str) -> None:
    body = chat("Name a fruit.", temperature=0.8, seed=7, max_tokens=24)
    # The first call warms the KV cache: llama.cpp's numbers after a cached prefix can differ
    # slightly from a cold read, so compare two calls that start from the same cache state.
    converse(live_server, body)
    first, second = (answer_of(converse(live_server, body)[1]) for _ in range(2))
    assert first == second


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not json", b"{nope", "invalid_json"),
    ("invalid utf-8", b'{"conversation": {"messages": [{"user": true, "text": "\xff\xfe"}]}}', "invalid_json"),
    ("missing conversation", b"{}", "invalid_request"),
    ("empty messages", b'{"conversation": {"messages": []}}', "invalid_request"),
    ("wrong type", b'{"conversation": {"messages": [{"user": "yes", "text": "hi"}]}}', "invalid_request"),
    ("missing text", b'{"conversation": {"messages": [{"user": true}]}}', "invalid_request"),
    ("unknown field", b'{"conversation": {"messages": [{"user": true, "text": "hi", "x": 1}]}}', "invalid_request"),
    ("last from model", b'{"conversation": {"messages": [{"user": false, "text": "hi"}]}}', "invalid_request"),
    (
        "temperature out of range",
        b'{"conversation": {"messages": [{"user": true, "text": "hi"}]}, "params": {"temperature": 9}}',
        "invalid_request",
    ),
    (
        "max_tokens zero",
        b'{"conversation": {"messages": [{"user": true, "text": "hi"}]}, "params": {"max_tokens": 0}}',
        "invalid_request",
    ),
    ("array body", b"[1, 2]", "invalid_request"),
]


@pytest.mark.parametrize(("case", "body", "error_type"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies_get_a_clear_400(live_server: str, case: str, body: bytes, error_type: str) -> None:
    r = httpx.post(f"{live_server}/api/converse", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == error_type
    assert len(error["message"]) > 10 and "Traceback" not in error["message"]


def test_body_over_the_limit_is_413(live_server: str) -> None:
    body = b'{"conversation": {"messages": [{"user": true, "text": "' + b"a" * Settings().max_body_bytes + b'"}]}}'
    r = httpx.post(f"{live_server}/api/converse", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_unknown_api_path_is_a_json_404(live_server: str) -> None:
    r = httpx.get(f"{live_server}/api/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"


def test_wrong_method_is_a_json_405(live_server: str) -> None:
    r = httpx.get(f"{live_server}/api/converse")
    assert r.status_code == 405
    assert r.json()["error"]["type"] == "method_not_allowed"


def test_sixteen_simultaneous_chats_all_finish(live_server: str) -> None:
    async def one(client: httpx.AsyncClient, i: int) -> str:
        body = chat(f"What is {i} plus {i}?", temperature=0, max_tokens=16)
        async with client.stream("POST", f"{live_server}/api/converse", json=body) as response:
            if response.status_code == 503:
                return "503"
            last = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    last = line[6:].strip()
            return last

    async def main() -> list[str]:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(16))), 180)

    endings = run_async(main())
    assert len(endings) == 16
    assert set(endings) <= {"done", "503"}, endings
    assert endings.count("done") >= 1


def test_next_turn_evaluates_only_the_new_text(live_server: str) -> None:
    texts: list[str] = []
    evaluated, totals = [], []
    for question in ["Hi!", "What is the capital of France?", "And of Spain?", "And Italy?", "Thanks.", "Bye."]:
        texts.append(question)
        _, events = converse(live_server, chat(*texts, temperature=0, max_tokens=24))
        done = events[-1][1]
        evaluated.append(done["prompt_tokens_evaluated"])
        totals.append(done["prompt_tokens"])
        texts.append(answer_of(events) or "ok")
    assert totals[-1] > totals[0] + 30  # the history grew...
    assert max(evaluated[1:]) < 40, evaluated  # ...but each turn only paid for its new text
    assert evaluated[-1] < totals[-1] / 3


def test_chinese_answer_streams_as_whole_characters(live_server: str) -> None:
    texts = ("把这句话翻译成中文：I love cats.", "我爱猫。", "把这句话翻译成中文：The weather is nice today.")
    # a system prompt in Chinese keeps the small model in Chinese: without it, a near tie could
    # tip its answer into English
    _, events = converse(live_server, chat(*texts, temperature=0, max_tokens=48, system="你是一个只说中文的助手。"))
    pieces = [d["text"] for n, d in events if n == "token"]
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in p) for p in pieces), pieces
    for piece in pieces:
        assert "\ufffd" not in piece
        piece.encode("utf-8")  # raises on a lone surrogate
    assert events[-1][0] == "done"


@pytest.fixture(scope="module")
def small_context() -> Iterator[str]:
    proc, url = start_server("--n-ctx", "512", env={"MODEL_PATH": "", "ENGINE": "auto"})
    yield url
    stop_server(proc)


def test_old_turns_are_dropped_to_fit_the_context(small_context: str) -> None:
    long_chat = [f"Turn {i}: " + "tell me more about rivers and mountains. " * 4 for i in range(31)]
    status, events = converse(small_context, chat(*long_chat, temperature=0, max_tokens=32))
    assert status == 200
    done = events[-1][1]
    assert events[-1][0] == "done"
    assert done["truncated_turns"] > 0
    assert done["prompt_tokens"] + 32 <= 512


def test_turns_past_the_context_keep_reusing_the_prompt_cache(small_context: str) -> None:
    # a history that nearly fills the 512-token window, read once; then turn after turn past it
    texts = [f"Note {i}: rivers and mountains." if i % 2 == 0 else f"Noted, {i}." for i in range(27)]
    seen: list[tuple[int, int, int]] = []  # (dropped messages, prompt tokens, tokens read) per turn
    for i in range(9):
        _, events = converse(small_context, chat(*texts, temperature=0, max_tokens=16))
        assert events[-1][0] == "done", events[-1]
        done = events[-1][1]
        assert done["prompt_tokens"] + 16 <= 512
        seen.append((done["truncated_turns"], done["prompt_tokens"], done["prompt_tokens_evaluated"]))
        question = f"Question {i}: what do you know of the lakes, rivers, hills and old towns of the north of Italy?"
        texts += [answer_of(events) or "ok", question]
    cuts = [cut for cut, _, _ in seen]
    assert cuts == sorted(cuts) and len(set(cuts) - {0}) >= 2, seen  # dropped in steps, more than once
    drops = {t for t in range(1, len(seen)) if cuts[t] != cuts[t - 1]}
    assert len(drops) <= (len(seen) - min(drops)) // 2, seen  # a step frees room for several turns
    kept = [t for t in range(1, len(seen)) if cuts[t] and t not in drops]
    assert kept and any(t - 1 in drops for t in kept), seen
    for t in kept:  # the turns that keep the cut read only their own new text
        _, prompt, read = seen[t]
        assert read < 60 and read < prompt / 4, seen


def test_a_message_too_long_for_the_context_is_a_400_with_counts(small_context: str) -> None:
    status, events = converse(small_context, chat("mountain " * 800, max_tokens=32))
    assert status == 400
    error = events[0][1]["error"]
    assert error["type"] == "context_length_exceeded"
    assert "512" in error["message"]
    assert httpx.get(f"{small_context}/health").status_code == 200


def test_two_users_taking_turns_do_not_evict_each_other(live_server: str) -> None:
    chats: dict[str, list[str]] = {"a": [], "b": []}
    questions = {
        "a": ["What is the capital of Germany?", "And of Italy?", "And of Spain?", "And of Peru?"],
        "b": ["Tell me about cats.", "What do they eat?", "Do they sleep a lot?", "Are they friendly?"],
    }
    evaluated: dict[str, list[int]] = {"a": [], "b": []}
    for turn in range(4):
        for who in ("a", "b"):
            chats[who].append(questions[who][turn])
            _, events = converse(live_server, chat(*chats[who], temperature=0, max_tokens=24))
            evaluated[who].append(events[-1][1]["prompt_tokens_evaluated"])
            chats[who].append(answer_of(events) or "ok")
    # From the second turn on, each user's history comes back from a saved state.
    assert max(evaluated["a"][1:] + evaluated["b"][1:]) < 20, evaluated
