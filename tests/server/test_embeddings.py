"""Embeddings from the default GGUF model: OpenAI's `/v1/embeddings` by the `openai` client, and
Ollama's `/api/embed` and `/api/embeddings` by the `ollama` one."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.harness import start_server, stop_server

MODEL = "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A server that keeps the chat model and its embedding instance loaded together."""
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MAX_LOADED_MODELS": "2"})
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the vectors are unit length


def test_the_same_text_gives_the_same_unit_vector(client: openai.OpenAI) -> None:
    first = client.embeddings.create(model="any", input="The cat sat on the mat.")  # base64, the client's default
    again = client.embeddings.create(model="any", input="The cat sat on the mat.", encoding_format="float")
    [one], [two] = first.data, again.data
    assert first.model == MODEL and len(one.embedding) == 640  # Gemma 3 270M's width
    assert one.embedding == pytest.approx(two.embedding, abs=1e-6)
    assert math.fsum(x * x for x in one.embedding) == pytest.approx(1.0, abs=1e-4)
    assert first.usage.prompt_tokens == first.usage.total_tokens > 1


def test_a_batch_keeps_its_order_and_similar_texts_are_closer(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "A cat is sitting on a rug.", "Quarterly tax returns are due in April."]
    batch = client.embeddings.create(model="any", input=texts)
    assert [d.index for d in batch.data] == [0, 1, 2]
    alone = client.embeddings.create(model="any", input=texts[2]).data[0].embedding
    cat, kitten, taxes = (d.embedding for d in batch.data)
    assert taxes == pytest.approx(alone, abs=1e-5)
    assert cosine(cat, kitten) > cosine(cat, taxes)


def test_control_token_text_is_embedded_as_text(client: openai.OpenAI) -> None:
    marker = client.embeddings.create(model="any", input="<end_of_turn>")
    word = client.embeddings.create(model="any", input="end")
    assert marker.usage.prompt_tokens > word.usage.prompt_tokens + 1  # several tokens, not the one control token


def test_the_chat_model_answers_alongside_its_embedding_instance(server: str, client: openai.OpenAI) -> None:
    client.embeddings.create(model="any", input="hello")
    client.chat.completions.create(model="any", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert sorted(httpx.get(f"{server}/health").json()["models_loaded"]) == [MODEL, f"{MODEL} (embeddings)"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"input": [[1, 2, 3]]}, "token ids"),
        ({"input": "x", "dimensions": 64}, "dimensions"),
        ({"input": "word " * 5000}, "window holds"),
    ],
)
def test_what_cannot_be_embedded_is_refused_by_name(client: openai.OpenAI, extra: dict[str, Any], named: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="any", **extra)
    assert named in refused.value.message


@pytest.mark.parametrize("body", [b"{", b'{"input": []}', b'{"input": 5}', b'{"input": "x", "encoding_format": "hex"}'])
def test_bad_bodies_get_openais_error_shape(server: str, body: bytes) -> None:
    r = httpx.post(f"{server}/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "code", "param"}


def test_an_embedding_instance_counts_against_max_loaded_models() -> None:
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MAX_LOADED_MODELS": "1"})
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        client.embeddings.create(model="any", input="hello")
        assert httpx.get(f"{url}/health").json()["models_loaded"] == [f"{MODEL} (embeddings)"]
        client.chat.completions.create(model="any", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
        assert httpx.get(f"{url}/health").json()["models_loaded"] == [MODEL]
    finally:
        stop_server(proc)


def test_ollamas_embed_gives_the_same_vectors(server: str, client: openai.OpenAI) -> None:
    ours = ollama.Client(host=server)
    texts = ["The cat sat on the mat.", "Quarterly tax returns are due in April."]
    embedded = ours.embed(model=MODEL, input=texts)
    openais = [d.embedding for d in client.embeddings.create(model="any", input=texts, encoding_format="float").data]
    assert len(embedded.embeddings) == 2 and embedded.model == MODEL
    for mine, theirs in zip(embedded.embeddings, openais, strict=True):
        assert list(mine) == pytest.approx(theirs, abs=1e-6)
    assert embedded.prompt_eval_count is not None and embedded.prompt_eval_count > 2
    legacy = ours.embeddings(model=f"{MODEL}:latest", prompt=texts[0])
    assert list(legacy.embedding) == pytest.approx(openais[0], abs=1e-6)
    assert ours.embed(model=MODEL).embeddings == []  # no input: Ollama's way to load the model


def test_ollamas_embed_refuses_in_ollamas_words(server: str) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        ollama.Client(host=server).embed(model="nomic-embed-text", input="x")
    assert unknown.value.status_code == 404 and "not found" in unknown.value.error
    for body in ({"model": MODEL, "input": 5}, {"model": MODEL, "input": "x", "truncate": True}):
        r = httpx.post(f"{server}/api/embed", json=body)
        assert r.status_code == 400 and isinstance(r.json()["error"], str)
