"""OpenAI's legacy text completions (`/v1/completions`), driven by the official `openai` client."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.harness import metrics

COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"  # a base continuation any model gets right


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


def test_a_prompt_is_continued_as_it_stands(client: openai.OpenAI) -> None:
    result = client.completions.create(model="any", prompt=COUNTING, temperature=0, max_tokens=12)
    assert result.object == "text_completion" and result.model == "gemma-3-270m-q4_k_m.gguf"
    [choice] = result.choices
    assert choice.text.lstrip().startswith("13, 14")  # the list goes on: no chat template around it
    assert choice.finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 12
    assert result.usage.total_tokens == result.usage.prompt_tokens + 12


def test_streamed_and_whole_agree_and_stops_end_the_answer(client: openai.OpenAI) -> None:
    args: dict[str, Any] = {"model": "any", "prompt": COUNTING, "temperature": 0, "max_tokens": 40, "stop": [" 16"]}
    whole = client.completions.create(**args)
    chunks = list(client.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == whole.choices[0].text and "13, 14, 15," in streamed and "16" not in streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_control_token_text_in_a_prompt_stays_text(client: openai.OpenAI) -> None:
    """Parsed as control tokens, "<end_of_turn>" would be one token; as text it is several."""
    marker = client.completions.create(model="any", prompt="<end_of_turn>", temperature=0, max_tokens=1)
    word = client.completions.create(model="any", prompt="end", temperature=0, max_tokens=1)
    assert marker.usage is not None and word.usage is not None
    assert marker.usage.prompt_tokens > word.usage.prompt_tokens + 1


def test_answers_take_the_queue_and_are_counted(live_server: str, client: openai.OpenAI) -> None:
    before = metrics(live_server)['snake_llama_answers_total{stop_reason=stop}']
    client.completions.create(model="any", prompt=COUNTING, temperature=0, max_tokens=4, stop=[","])
    assert metrics(live_server)['snake_llama_answers_total{stop_reason=stop}'] == before + 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"n": 2}, "n is not supported"),
        ({"echo": True}, "echo"),
        ({"logprobs": 2}, "logprobs"),
        ({"suffix": "}"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": [1, 2, 3]}, "token ids"),
        ({"prompt": ["one", "two"]}, "one prompt per request"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(client: openai.OpenAI, args: dict[str, Any], named: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(**{"model": "any", "prompt": "Hi", "max_tokens": 4, **args})
    assert named in refused.value.message and refused.value.code == "unsupported_parameter"


def test_a_prompt_too_long_for_the_window_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="any", prompt="word " * 40_000, max_tokens=4)
    assert refused.value.code == "context_length_exceeded"


@pytest.mark.parametrize("body", [b"{", b'{"prompt": 5}', b'{"prompt": "x", "max_tokens": 0}', b"{}"])
def test_bad_bodies_get_openais_error_shape(live_server: str, body: bytes) -> None:
    r = httpx.post(f"{live_server}/v1/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "code", "param"}
