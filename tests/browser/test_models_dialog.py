"""The Models dialog on the real server: the models with their facts, a download from a Hugging
Face Hub on loopback (tests/hub.py) with its progress, a reload during a download, Cancel and
Delete; and that the server asks the Hub nothing until the user does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE
from playwright.sync_api import expect

from tests import tinymodels as tm
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    RecordedPage,
    ask,
    assert_only_loopback,
    last_answer,
    open_chat,
)
from tests.harness import start_llama_server, start_server, stop_server
from tests.hub import Hub, Repo, running, start_with_hub

REPO = "test/tiny-GGUF"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    path = tmp_path_factory.mktemp("hub") / "tiny.gguf"
    tm.write_gguf(path, "f32")
    files = {"tiny-Q4_K_M.gguf": path.read_bytes(), "slow-Q8_0.gguf": os.urandom(3 * DOWNLOAD_CHUNK_SIZE)}
    hub = Hub({REPO: Repo(files)})
    with running(hub):
        yield hub


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(hub: Hub, folder: Path) -> Iterator[str]:
    proc, url = start_with_hub(hub, folder)
    yield url
    stop_server(proc)


def open_models(page: Any) -> Any:
    page.get_by_role("button", name="Models").click()
    dialog = page.get_by_role("dialog", name="Models")
    expect(dialog).to_be_visible()
    return dialog


def list_files(dialog: Any) -> None:
    dialog.get_by_label("Hugging Face repository").fill(REPO)
    dialog.get_by_role("button", name="List files").click()
    expect(dialog.get_by_role("button", name="Download tiny-Q4_K_M.gguf")).to_be_visible()


def test_a_model_downloaded_from_the_page_joins_the_list_and_can_be_deleted(
    recorded_page: RecordedPage, server: str, hub: Hub, folder: Path
) -> None:
    page = recorded_page.page
    open_chat(recorded_page, server)
    dialog = open_models(page)
    default = dialog.locator("li[data-model='gemma-3-270m-q4_k_m.gguf']")
    expect(default).to_contain_text("(default)")
    expect(default).to_contain_text("Q4_K_M")
    expect(dialog.get_by_role("button", name="Delete gemma-3-270m-q4_k_m.gguf")).to_have_count(0)
    assert not [s for s in hub.seen if "agent-harnesses" not in s[1]]  # nothing asked of the Hub until the user does

    list_files(dialog)
    expect(dialog.get_by_role("list", name="Files of the repository")).to_contain_text("the largest that fits")
    dialog.get_by_role("button", name="Download tiny-Q4_K_M.gguf").click()
    downloads = dialog.get_by_role("list", name="Downloads")
    expect(downloads).to_contain_text("Downloaded: it is in the model list.", timeout=30_000)
    mine = dialog.locator("li[data-model='tiny-Q4_K_M.gguf']")
    expect(mine).to_be_visible()
    expect(page.get_by_role("combobox", name="Model").locator("option", has_text="tiny-Q4_K_M.gguf")).to_have_count(1)

    dialog.get_by_role("button", name="Delete tiny-Q4_K_M.gguf").click()
    size = (folder / "tiny-Q4_K_M.gguf").stat().st_size
    expect(mine).to_contain_text(f"Delete tiny-Q4_K_M.gguf ({size / 1e3:.1f} KB) from the models folder?")
    mine.get_by_role("button", name="Delete file").click()
    expect(mine).to_have_count(0)
    assert not (folder / "tiny-Q4_K_M.gguf").exists()
    assert not recorded_page.errors
    assert_only_loopback(recorded_page)


def test_a_download_goes_on_through_a_reload_and_cancel_keeps_nothing(
    recorded_page: RecordedPage, server: str, hub: Hub, folder: Path, chromium: Any
) -> None:
    hub.delay_s = 0.04  # 30 MiB at 64 KiB a pause: about 20 s
    try:
        page = recorded_page.page
        open_chat(recorded_page, server)
        dialog = open_models(page)
        list_files(dialog)
        dialog.get_by_role("button", name="Download slow-Q8_0.gguf").click()
        bar = dialog.get_by_role("progressbar", name="slow-Q8_0.gguf downloaded")
        expect(bar).to_be_visible()
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
        expect(page.get_by_role("button", name="Models")).to_contain_text("downloading")  # found again at once
        dialog = open_models(page)
        expect(dialog.get_by_role("list", name="Downloads")).to_contain_text("MB/s", timeout=30_000)
        dialog.get_by_role("button", name="Cancel the download of slow-Q8_0.gguf").click()
        expect(dialog.get_by_role("list", name="Downloads")).to_contain_text("Cancelled: nothing was kept.")
        assert not (folder / "slow-Q8_0.gguf").exists()
    finally:
        hub.delay_s = 0.0
    context = chromium.new_context(viewport={"width": 1000, "height": 700}, bypass_csp=True)
    try:
        checked = context.new_page()
        checked.goto(server + "/")
        expect(checked.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
        list_files(open_models(checked))
        checked.add_script_tag(path=str(AXE))
        assert checked.evaluate(RUN_AXE) == []
    finally:
        context.close()


def test_a_remote_servers_model_is_picked_and_answers_in_a_chat_that_switches(
    recorded_page: RecordedPage, tmp_path: Path
) -> None:
    """A llama.cpp server on loopback in REMOTES: its model is in the dialog and the picker, and a
    chat switches from the local model to it mid-conversation."""
    tm.write_gguf(tmp_path / "local.gguf", "f32", continuation=f"Local here.{tm.STOP_MARKER}")
    tm.write_gguf(tmp_path / "far.gguf", "f32", continuation=f"Far here.{tm.STOP_MARKER}")
    far_proc, far_root = start_llama_server(tmp_path / "far.gguf", alias="far", n_ctx=2048, parallel=1)
    proc, url = start_server("--model", str(tmp_path / "local.gguf"), env={"REMOTES": f"{far_root}/v1"})
    try:
        page = recorded_page.page
        open_chat(recorded_page, url)
        far = f"{far_root.removeprefix('http://')}/far"
        expect(open_models(page).locator(f"li[data-model='{far}']")).to_contain_text("Load")
        page.get_by_role("button", name="Close").click()
        ask(page, "Who is there?")
        expect(last_answer(page).locator("[data-part=bubble]")).to_have_text("Local here.", timeout=ANSWER_S)
        page.get_by_role("combobox", name="Model").select_option(far)
        ask(page, "And there?")
        answer = last_answer(page)
        expect(answer.locator("[data-part=bubble]")).to_have_text("Far here.", timeout=ANSWER_S)
        expect(answer.locator("[data-part=note]")).to_contain_text(far)
        assert not recorded_page.errors
        assert_only_loopback(recorded_page)
    finally:
        stop_server(proc)
        stop_server(far_proc)
