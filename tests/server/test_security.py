"""Without an API key: pages on other sites, and names rebound to loopback, cannot use the server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import msgspec
import openai
import pytest

from server.security import host_name
from tests.harness import chat, metrics, start_server, stop_server
from wire.routes import CONVERSE, MODELS, TOKENS
from wire.types import TokensRequest

EVIL = "http://evil.example"
ALLOWED = "http://127.0.0.1:5173"


def answers_started(url: str) -> float:
    return metrics(url)["snake_llama_answers_total"]


def test_a_cross_site_text_post_starts_nothing(live_server: str) -> None:
    """What a form or a `fetch(..., {mode: "no-cors"})` on another site sends: no preflight asked."""
    before = answers_started(live_server)
    body = msgspec.json.encode(chat("Hi", max_tokens=4))
    for content_type in ("text/plain", "application/json"):
        headers = {"Origin": EVIL, "Content-Type": content_type}
        r = httpx.post(live_server + CONVERSE.path, content=body, headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["type"] == "forbidden_origin" and EVIL in r.json()["error"]["message"]
    r = httpx.post(f"{live_server}/v1/chat/completions", headers={"Origin": EVIL},
                   json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_origin"  # OpenAI's shape there
    assert answers_started(live_server) == before


def test_json_routes_take_only_json(live_server: str) -> None:
    body = msgspec.json.encode(TokensRequest("Hi"))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        for path in (CONVERSE.path, TOKENS.path, "/v1/chat/completions"):
            r = httpx.post(live_server + path, content=body, headers=headers)
            assert r.status_code == 415, (path, content_type)
            assert "application/json" in r.text
    r = httpx.post(live_server + TOKENS.path, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_the_page_own_origin_is_served(live_server: str) -> None:
    with httpx.stream("POST", live_server + CONVERSE.path, json=chat("Hi", max_tokens=4),
                      headers={"Origin": live_server}) as r:
        assert r.status_code == 200
        r.read()
    port = live_server.rpartition(":")[2]
    # the same server under another loopback name, as a browser at http://localhost:PORT sends it
    r = httpx.get(live_server + MODELS.path, headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
    assert r.status_code == 200


def test_a_name_rebound_to_loopback_is_refused(live_server: str) -> None:
    for path in ("/", "/health", MODELS.path, "/v1/models"):
        r = httpx.get(live_server + path, headers={"Host": "rebind.attacker.example:8000"})
        assert r.status_code == 403, path
        assert "rebind.attacker.example" in r.text
    for host in ("127.0.0.1", "[::1]:80", "10.1.2.3:8000"):  # addresses are no DNS name to rebind
        assert httpx.get(live_server + "/health", headers={"Host": host}).status_code == 200, host


@pytest.fixture(scope="module")
def with_cors() -> Iterator[str]:
    proc, url = start_server(env={"CORS_ORIGINS": ALLOWED})
    yield url
    stop_server(proc)


def test_cors_origins_may_call_with_the_openai_client(with_cors: str) -> None:
    client = openai.OpenAI(base_url=f"{with_cors}/v1", api_key="none", default_headers={"Origin": ALLOWED})
    answer = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert answer.choices[0].message.content is not None
    r = httpx.get(f"{with_cors}/v1/models", headers={"Origin": ALLOWED})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ALLOWED
    assert httpx.get(f"{with_cors}/v1/models", headers={"Origin": EVIL}).status_code == 403


def test_with_a_key_names_and_origins_are_the_keys_business() -> None:
    proc, url = start_server(env={"API_KEY": "k3y"})
    try:
        r = httpx.get(f"{url}/v1/models", headers={"Host": "box.lan", "Origin": EVIL, "Authorization": "Bearer k3y"})
        assert r.status_code == 200
        assert httpx.get(f"{url}/v1/models", headers={"Host": "box.lan"}).status_code == 401
    finally:
        stop_server(proc)


@pytest.mark.parametrize(
    ("authority", "host"),
    [("127.0.0.1:8000", "127.0.0.1"), ("localhost", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"),
     ("evil.example:80", "evil.example")],
)
def test_host_name(authority: str, host: str) -> None:
    assert host_name(authority) == host
