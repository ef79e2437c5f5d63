"""The page on a server with named keys (API_KEYS): the key dialog takes a named key, and the
answers go by its name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import tinymodels as tm
from tests.browser.helpers import ANSWER_S, RecordedPage, ask, open_chat, wait_answer
from tests.harness import metrics, start_server, stop_server


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("keyed") / "tiny.gguf"
    tm.write_gguf(path)
    proc, url = start_server("--model", str(path), env={"API_KEYS": "alice:alice-k3y,bob:bob-k3y",
                                                         "OPEN_STATUS": "true"})
    yield url, Path(proc.log_path)
    stop_server(proc)


def test_the_key_dialog_takes_a_named_key(recorded_page: RecordedPage, keyed: tuple[str, Path]) -> None:
    url, log = keyed
    page = recorded_page.page
    open_chat(recorded_page, url)
    ask(page, "Hi")
    dialog = page.get_by_role("dialog", name="API key needed")
    expect(dialog).to_be_visible(timeout=ANSWER_S)
    dialog.get_by_label("API key").fill("bob-k3y")
    dialog.get_by_role("button", name="Use key").click()
    expect(wait_answer(page)).to_contain_text(tm.ANSWER)
    assert metrics(url)["snake_llama_key_answers_total{key=bob}"] == 1
    assert "key=bob" in log.read_text() and "bob-k3y" not in log.read_text()
    assert recorded_page.errors == []
