"""The access log (server.accesslog): one line per request, which a path cannot forge, with the
status the client got, a 500 included."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.engines.base import Engine
from server.engines.loader import plan_engine
from server.settings import Settings
from tests import tinymodels as tm
from tests.harness import LOCAL, wait_healthy
from wire.routes import TOKENS


@pytest.fixture
def broken(tmp_path: Path) -> Engine:
    """A loadable tiny model whose tokenizer fails as no engine error would: a bug of ours."""
    tm.write_gguf(tmp_path / "tiny.gguf")
    engine = plan_engine(Settings(model_path=str(tmp_path / "tiny.gguf"), n_ctx=1024))()

    def render(*_args: object) -> None:
        raise RuntimeError("a bug")

    engine.render = render  # type: ignore[method-assign,assignment]  # broken on purpose
    return engine


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "snake_llama.access"]


def test_a_500_is_logged_and_counted_as_500(broken: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(Settings(), lambda: broken, lambda exc: None)
    with TestClient(app, LOCAL, raise_server_exceptions=False) as client:
        wait_healthy(client)
        assert client.post(TOKENS.path, json={"text": "hi"}).status_code == 500
        metrics = client.get("/metrics").text
    assert f'snake_llama_requests_total{{method="POST",route="{TOKENS.path}",status="500"}} 1.0' in metrics
    assert any(f"path={TOKENS.path} status=500 " in line for line in access_lines(caplog))


def test_a_path_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(Settings(), lambda: NotImplemented, lambda exc: None)  # never started: no model needed
    TestClient(app, base_url=LOCAL).get("/x%0aINFO:%20forged%0d%1b[2J\\")
    line = next(line for line in access_lines(caplog) if "forged" in line)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert r"path=/x\nINFO: forged\r\x1b[2J\\ status=404" in line
