"""Running it as a service: metrics, access log, API key, security headers, safe binding."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.engines.base import Engine
from server.engines.loader import plan_engine
from server.security import CONTENT_SECURITY_POLICY
from server.settings import Settings
from tests import tinymodels as tm
from tests.harness import LOCAL, ROOT, chat, converse, read_events, start_server, stop_server, wait_healthy
from wire.routes import ANSWER, STOP_ANSWER
from wire.types import Health

KEY = "s3cret-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server with API_KEY set, on a tiny model (the guard does not care which model)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    tm.write_gguf(path)
    proc, url = start_server("--model", str(path), env={"API_KEY": KEY})
    yield url, Path(proc.log_path)
    stop_server(proc)


def test_anthropic_clients_send_the_key_as_x_api_key(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    asked: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
    keyed = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    assert keyed.messages.create(model="any", max_tokens=4, messages=asked).usage.output_tokens > 0
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic.Anthropic(base_url=url, api_key="wrong", max_retries=0).messages.create(
            model="any", max_tokens=4, messages=asked
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert "x-api-key" in refused.value.message


def test_api_needs_the_key(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    body = chat("Hi", temperature=0, max_tokens=16)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        r = httpx.post(f"{url}/api/converse", json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["type"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    with httpx.stream("POST", f"{url}/api/converse", json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status_code == 200
        answer_id = read_events(r)[0][1]["id"]
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    # an answer's id is no key: reading it again or stopping it needs the key too
    for call in (httpx.get, httpx.post):
        path = ANSWER.url(answer_id=answer_id) if call is httpx.get else STOP_ANSWER.url(answer_id=answer_id)
        assert call(url + path).status_code == 401, path
        assert call(url + path, headers={"Authorization": f"Bearer {KEY}"}).status_code in (200, 204), path


def test_page_and_health_status_stay_open_and_the_rest_needs_the_key(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    assert httpx.get(f"{url}/").status_code == 200
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200 and health.json() == msgspec.to_builtins(Health("ok"))
    assert "tiny.gguf" not in health.text  # no model, and no path of it
    full = httpx.get(f"{url}/health", headers=AUTH).json()
    assert full["model"] == "tiny.gguf" and full["model_path"].endswith("tiny.gguf")
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert "snake_llama_" in httpx.get(f"{url}/metrics", headers=AUTH).text


def test_open_status_opens_metrics_and_health_details(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tm.write_gguf(path)
    settings = Settings(model_path=str(path), api_key=KEY, open_status=True)
    with TestClient(create_app(settings, plan_engine(settings), lambda exc: None), LOCAL) as client:
        wait_healthy(client)
        assert client.get("/health").json()["model"] == "tiny.gguf"
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/models").status_code == 401  # the API itself still needs the key


def test_security_headers_on_every_page(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    for path in ("/", "/health", "/wire/types.py", "/api/converse"):
        headers = httpx.get(f"{url}{path}").headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "access-control-allow-origin" not in httpx.get(f"{url}/health", headers={"Origin": "http://evil.test"}).headers


def test_metrics_and_access_log_after_a_chat(guarded: tuple[str, Path]) -> None:
    url, log = guarded
    status, events = converse_with_key(url)
    assert status == 200 and events[-1][0] == "done"
    generated = events[-1][1]["completion_tokens"]
    text = httpx.get(f"{url}/metrics", headers=AUTH).text
    model = 'model="tiny.gguf"'  # every answer's series is labelled with the model that wrote it
    assert float(metric(text, f"snake_llama_tokens_generated_total{{{model}}}")) >= generated > 0
    assert float(metric(text, f"snake_llama_first_token_seconds_count{{{model}}}")) >= 1
    assert float(metric(text, f'snake_llama_answers_total{{{model},stop_reason="stop"}}')) >= 1
    assert float(metric(text, 'snake_llama_requests_total{method="POST",route="/api/converse",status="200"}')) >= 1
    assert "snake_llama_queue_depth 0.0" in text
    lines = [line for line in log.read_text().splitlines() if "path=/api/converse status=200" in line]
    assert lines and re.search(r"request_id=[\w-]+ method=POST .* duration_ms=[\d.]+ completion_tokens=\d+", lines[-1])


def converse_with_key(url: str) -> tuple[int, list[tuple[str, Any]]]:
    with httpx.stream(
        "POST", f"{url}/api/converse", json=chat("Hi", temperature=0, max_tokens=16),
        headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "test-req-1"},
    ) as r:
        assert r.headers["x-request-id"] == "test-req-1"
        return r.status_code, read_events(r)


def metric(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split()[-1]
    raise AssertionError(f"{name} not in metrics")


def test_refuses_a_public_address_without_a_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--host", "0.0.0.0", "--port", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "API_KEY": ""},
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API_KEY" in result.stderr and "--allow-insecure" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_client_without_the_key_is_told_why(guarded: tuple[str, Path]) -> None:
    url, _ = guarded
    status, events = converse(url, chat("Hi"))
    assert status == 401 and events[0][1]["error"]["type"] == "invalid_api_key"



def test_health_is_503_while_the_model_loads_then_200(tmp_path: Path) -> None:
    """The real app in-process; its loader waits on a gate, as a big model on a slow disk would."""
    tiny = tmp_path / "tiny.gguf"
    tm.write_gguf(tiny)
    gate = threading.Event()
    settings = Settings(model_path=str(tiny), n_ctx=1024)
    load = plan_engine(settings)

    def slow_load() -> Engine:
        gate.wait(30)
        return load()

    failures: list[Exception] = []
    app = create_app(settings, slow_load, failures.append)
    with TestClient(app, base_url=LOCAL) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"] == "1"
        r = client.post("/api/converse", json=chat("Hi"))
        assert r.status_code == 503 and r.json()["error"]["type"] == "model_loading"
        gate.set()
        wait_healthy(client)
        assert client.get("/health").json()["engine"] == "llama-cpp"
    assert not failures


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/static/pyodide/pyodide.asm.wasm", "application/wasm"), ("/static/pyodide/pyodide.mjs", "text/javascript")],
)
def test_runtime_files_are_compressed_cacheable_and_typed(live_server: str, path: str, media_type: str) -> None:
    packed = httpx.get(f"{live_server}{path}", headers={"Accept-Encoding": "gzip"})
    plain = httpx.get(f"{live_server}{path}", headers={"Accept-Encoding": "identity"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert packed.content == plain.content  # httpx undoes the gzip: same bytes either way
    assert int(packed.headers["content-length"]) < len(plain.content) * 0.6
    assert packed.headers["content-type"].startswith(media_type)
    assert "max-age=86400" in packed.headers["cache-control"]
    revalidate = {"If-None-Match": packed.headers["etag"], "Accept-Encoding": "gzip"}
    again = httpx.get(f"{live_server}{path}", headers=revalidate)
    assert again.status_code == 304
