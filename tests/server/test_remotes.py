"""REMOTES: the models of other OpenAI-compatible servers in our one list, beside the local ones.

Two real llama.cpp servers (`tests.llama_server`, xllamacpp on loopback) serve tiny models under
aliases of their own: `alpha` answers one sentence, `beta` writes "tick tock " until it is
stopped, so that it is still answering when a test kills its server. A third remote is named
where nothing listens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from server.remotes import label
from server.settings import RemoteSpec, SettingError, Settings, parse_remotes
from tests import tinymodels as tm
from tests.harness import (
    Popen,
    answer_of,
    chat,
    converse,
    free_port,
    iter_sse,
    run_server,
    start_llama_server,
    start_server,
    stop_server,
    wait_until,
)

LOCAL_ANSWER, ALPHA_ANSWER = "Local here.", "Alpha here."
OPENAI_TIMEOUT = 5  # no answer may hang past it
BETA_CTX = 8192  # over beta's 2 slots: room for an answer long enough to be cut


# -- the setting ---------------------------------------------------------------------------------


def test_remotes_are_urls_each_with_an_optional_key() -> None:
    parsed = parse_remotes(" http://gpu-box:8000/v1/|s3cret , https://10.0.0.2/team/v1,")
    assert parsed == (RemoteSpec("http://gpu-box:8000/v1", "s3cret"), RemoteSpec("https://10.0.0.2/team/v1", ""))
    assert [label(spec.url) for spec in parsed] == ["gpu-box:8000", "10.0.0.2/team"]
    assert Settings(remotes="http://a:1/v1|k").remote_specs == (RemoteSpec("http://a:1/v1", "k"),)
    assert Settings().remote_specs == ()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("gpu-box:8000/v1|KEY", "'gpu-box:8000/v1' is not an http:// or https:// URL"),
        ("ftp://gpu-box/v1", "is not an http:// or https:// URL"),
        ("http://gpu-box:port/v1", "is not an http:// or https:// URL"),
        ("http://user:KEY@gpu-box/v1", "http://gpu-box/v1: give the base URL alone"),
        ("http://gpu-box/v1?key=KEY", "give the base URL alone"),
        ("http://gpu-box/v1|", "the key after | is empty"),
        ("http://gpu-box/v1|KEY,http://gpu-box/v1/", "http://gpu-box/v1 is named twice"),
    ],
)
def test_a_malformed_entry_is_named_without_its_key(value: str, words: str) -> None:
    with pytest.raises(SettingError, match="^REMOTES: ") as caught:
        Settings(remotes=value)
    assert words in str(caught.value) and "KEY" not in str(caught.value).replace("|KEY", "")


def test_a_malformed_remotes_is_one_line_and_exit_2() -> None:
    result = run_server(env={"REMOTES": "http://ok:1/v1|s3cret1,nonsense|s3cret2"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("snake_llama: error: bad setting: REMOTES: 'nonsense' is not")
    assert "s3cret" not in line and "Traceback" not in result.stderr


# -- two real llama.cpp servers --------------------------------------------------------------------


@dataclass
class Remotes:
    """Our server (`url`) in front of two llama.cpp servers; `beta` can be killed and restarted."""

    url: str
    alpha: str  # model names as our list gives them
    beta: str
    dead: str  # the label of the remote where nothing listens
    beta_proc: Popen
    beta_port: int
    beta_model: Path

    def restart_beta(self) -> None:
        self.beta_proc, _ = start_llama_server(self.beta_model, alias="beta", n_ctx=BETA_CTX, port=self.beta_port)


@pytest.fixture(scope="module")
def remotes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remotes]:
    d = tmp_path_factory.mktemp("remotes")
    tm.write_gguf(d / "local.gguf", "f32", continuation=f"{LOCAL_ANSWER}{tm.STOP_MARKER}")
    tm.write_gguf(d / "alpha.gguf", "f32", continuation=f"{ALPHA_ANSWER}{tm.STOP_MARKER}")
    tm.write_gguf(d / "beta.gguf", "f32", continuation="tick tock ", loop=True)
    alpha_proc, alpha_root = start_llama_server(d / "alpha.gguf", alias="alpha", n_ctx=2048, parallel=1)
    beta_port = free_port()
    beta_proc, beta_root = start_llama_server(d / "beta.gguf", alias="beta", n_ctx=BETA_CTX, port=beta_port)
    dead = f"127.0.0.1:{free_port()}"
    env = {
        "REMOTES": f"{alpha_root}/v1|alpha-key,{beta_root}/v1,http://{dead}/v1", "OPENAI_TIMEOUT": str(OPENAI_TIMEOUT),
        "THREADS": "1",
    }
    proc, url = start_server("--model", str(d / "local.gguf"), env=env)
    state = Remotes(url, f"{alpha_root.removeprefix('http://')}/alpha", f"{beta_root.removeprefix('http://')}/beta",
                    dead, beta_proc, beta_port, d / "beta.gguf")
    yield state
    stop_server(proc)
    stop_server(alpha_proc)
    stop_server(state.beta_proc)


def listed(url: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in httpx.get(f"{url}/api/models", timeout=30).json()["models"]}


def client(url: str) -> openai.OpenAI:
    # no retries: a 503 must come back as it is, at once
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_every_remote_model_is_listed_beside_the_local_ones(remotes: Remotes) -> None:
    models = listed(remotes.url)
    assert list(models) == ["local.gguf", remotes.alpha, remotes.beta, remotes.dead]
    for name in (remotes.alpha, remotes.beta):
        assert models[name]["usable"] and models[name]["engine"] == "openai"
    # the context of one of its slots (2048 tokens over alpha's one, 8192 over beta's two)
    assert (models[remotes.alpha]["n_ctx"], models[remotes.beta]["n_ctx"]) == (2048, 4096)
    assert not models[remotes.dead]["usable"] and "cannot reach" in models[remotes.dead]["reason"]
    ids = [m.id for m in client(remotes.url).models.list()]
    assert ids == ["local.gguf", remotes.alpha, remotes.beta]
    status, events = converse(remotes.url, {**chat("Hi"), "model": "gpt-4"})  # a choice: unknown names are refused
    assert status == 404 and events[0][1]["error"]["type"] == "model_not_found"


def test_each_remote_answers_through_the_openai_client_and_our_api(remotes: Remotes) -> None:
    ask = [{"role": "user", "content": "Who is there?"}]
    reply = client(remotes.url).chat.completions.create(model=remotes.alpha, messages=ask, max_tokens=16,  # type: ignore[arg-type]
                                                        temperature=0)
    assert reply.model == remotes.alpha and reply.choices[0].message.content == ALPHA_ANSWER
    stream = client(remotes.url).chat.completions.create(model=remotes.beta, messages=ask, max_tokens=6,  # type: ignore[arg-type]
                                                         temperature=0, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if isinstance(c, ChatCompletionChunk) and c.choices)
    assert text.startswith("tick tock")
    status, events = converse(remotes.url, {**chat("Who is there?", temperature=0, max_tokens=16),
                                            "model": remotes.alpha})
    assert status == 200 and answer_of(events) == ALPHA_ANSWER
    assert events[-1][0] == "done"
    assert events[-1][1]["model"] == remotes.alpha


def test_a_chat_switches_between_local_and_remote_models(remotes: Remotes) -> None:
    texts = ["Hello?"]
    for model, answer in [(remotes.alpha, ALPHA_ANSWER), ("local.gguf", LOCAL_ANSWER), (remotes.alpha, ALPHA_ANSWER)]:
        _, events = converse(remotes.url, {**chat(*texts, temperature=0, max_tokens=16), "model": model})
        assert answer_of(events) == answer and events[-1][1]["model"] == model
        texts += [answer, "And now?"]


def test_a_remote_that_dies_fails_clearly_and_comes_back(remotes: Remotes) -> None:
    body = {**chat("Talk.", temperature=0, max_tokens=3000), "model": remotes.beta}
    started = time.monotonic()
    with httpx.stream("POST", f"{remotes.url}/api/converse", json=body, timeout=60) as response:
        stream = iter_sse(response)
        for name, _ in stream:
            if name == "token":
                break
        remotes.beta_proc.kill()  # mid-answer
        remotes.beta_proc.wait()
        rest = [(name, json.loads(data)) for name, data in stream]
    assert rest[-1][0] == "error" and "remote model server" in rest[-1][1]["message"]
    assert time.monotonic() - started < OPENAI_TIMEOUT

    # listed as down, with the reason, within a listing's freshness
    wait_until(lambda: not listed(remotes.url)[remotes.beta]["usable"], timeout=10)
    assert "cannot reach" in listed(remotes.url)[remotes.beta]["reason"]
    # its model: a 503 before any stream on OpenAI's API, an error event (no loading) on ours
    with pytest.raises(openai.APIStatusError) as refused:
        client(remotes.url).chat.completions.create(model=remotes.beta, messages=[{"role": "user", "content": "Hi"}],
                                                    stream=True)
    assert refused.value.status_code == 503 and "cannot reach" in refused.value.message
    ollama = httpx.post(f"{remotes.url}/api/chat", json={"model": remotes.beta, "messages": []}, timeout=30)
    assert ollama.status_code == 503 and "cannot reach" in ollama.json()["error"]
    status, events = converse(remotes.url, {**chat("Hi"), "model": remotes.beta})
    assert status == 200 and [n for n, _ in events] == ["answer", "error"]
    assert events[-1][1]["type"] == "remote_unavailable"
    # the local model and the other remote are untouched
    assert answer_of(converse(remotes.url, chat("Hi", temperature=0, max_tokens=16))[1]) == LOCAL_ANSWER
    _, events = converse(remotes.url, {**chat("Hi", temperature=0, max_tokens=16), "model": remotes.alpha})
    assert answer_of(events) == ALPHA_ANSWER

    remotes.restart_beta()  # back on its port: back in the list by itself
    wait_until(lambda: listed(remotes.url)[remotes.beta]["usable"], timeout=10)
    _, events = converse(remotes.url, {**chat("Talk.", temperature=0, max_tokens=4), "model": remotes.beta})
    assert events[-1][0] == "done" and answer_of(events).startswith("tick tock")


def test_a_remote_where_nothing_listens_is_a_503_and_gives_no_embeddings(remotes: Remotes) -> None:
    refused = httpx.post(f"{remotes.url}/v1/chat/completions", timeout=30,
                         json={"model": f"{remotes.dead}/any", "messages": [{"role": "user", "content": "Hi"}]})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "remote_unavailable"
    unknown = httpx.post(f"{remotes.url}/v1/chat/completions", timeout=30,
                         json={"model": f"{remotes.alpha}-not", "messages": [{"role": "user", "content": "Hi"}]})
    assert unknown.status_code == 404
    embed = httpx.post(f"{remotes.url}/v1/embeddings", json={"model": remotes.alpha, "input": "Hi"}, timeout=30)
    assert embed.status_code == 400 and "gives no embeddings" in embed.json()["error"]["message"]
