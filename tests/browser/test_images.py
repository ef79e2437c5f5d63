"""Images in real headless Chromium, on the real server: the default model with the tiny vision
projector the tests write (tests.tinyprojector), and beside it a text model without one. Attach,
paste and drop, what the request carries (a large image scaled down in the page), thumbnails that
open full size and come back after a reload, export and import with the images' bytes, the
refusal before sending for a model without vision, and a full storage quota that loses no chat.
The first test also takes the README's screenshot (test-results/image.png, ignored by git)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from client.images import STORAGE_FULL, no_vision
from tests.browser.helpers import (
    AXE,
    PYTHON_READY_S,
    RUN_AXE,
    VIEWPORT,
    RecordedPage,
    assert_only_loopback,
    export_chat,
    file,
    pending,
    set_settings,
    wait_answer,
)
from tests.harness import ROOT, start_server, stop_server
from tests.pngs import gif, noise, size_of
from tests.tinymodels import write_gguf
from tests.tinyprojector import data_url, png, write_projector

DEFAULT = "gemma-3-270m-q4_k_m.gguf"
TEXT_MODEL = "tiny-text.gguf"
SCREENSHOT = ROOT / "test-results" / "image.png"
RED = png(40, 30, (220, 38, 38))
BLUE = png(30, 40, (37, 99, 235))
WIDE = png(2400, 1200, (22, 163, 74))  # over the 1,568-pixel bound: scaled down to 1568 x 784
CONVERSE = "/api/converse"
QUOTA = 600_000  # bytes of storage, for the quota test
FIRST = "A chat saved before the disk filled up"
GIF = gif([[0, 1], [1, 0]], 2, 1, [(255, 0, 0), (0, 0, 255)])  # two frames: only the first is sent


@pytest.fixture(scope="module")
def vision_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The default model with a projector, and a text model without one in its models folder."""
    folder = tmp_path_factory.mktemp("vision-page")
    projector = write_projector(folder / "projector.gguf")
    models = folder / "models"
    models.mkdir()
    write_gguf(models / TEXT_MODEL)
    proc, url = start_server(env={"MODEL_PATH": "", "ENGINE": "auto", "MMPROJ": str(projector),
                                  "MODELS_DIR": str(models)})
    yield url
    stop_server(proc)


def open_page(recorded: RecordedPage, url: str) -> Any:
    page = recorded.page
    page.goto(url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    return page


@pytest.fixture
def axe_page(chromium: Any) -> Iterator[RecordedPage]:
    """A recorded page whose context lets axe in (axe is an inline script, which the page's policy forbids)."""
    recorded = RecordedPage.__new__(RecordedPage)
    recorded.context = chromium.new_context(viewport={**VIEWPORT, "width": 1000}, bypass_csp=True)
    recorded.page = recorded.context.new_page()
    recorded.requests, recorded.errors = [], []
    recorded.page.on("request", lambda request: recorded.requests.append(request.url))
    recorded.page.on("pageerror", lambda error: recorded.errors.append(str(error)))
    recorded.page.on("console", recorded._console)
    yield recorded
    recorded.context.close()


def paste(page: Any, name: str, data: bytes) -> None:
    """Paste an image file into the message box, as the clipboard hands one over."""
    page.evaluate(
        """([name, bytes]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
            const box = document.getElementById('prompt');
            box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
        [name, list(data)],
    )


def drop(page: Any, name: str, data: bytes) -> None:
    page.evaluate(
        """([name, bytes]) => {
            const form = document.getElementById('type-area');
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
            form.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
            form.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        [name, list(data)],
    )


def sent_images(request: Any) -> list[str]:
    return list(json.loads(request.post_data)["conversation"]["messages"][-1].get("images", []))


def decoded(url: str) -> bytes:
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64", head
    return base64.b64decode(data)


def thumbnails(message: Any) -> Any:
    return message.locator("[data-part=images] button img")


def send(page: Any, text: str) -> Any:
    with page.expect_request(lambda r: r.url.endswith(CONVERSE)) as asked:
        box = page.get_by_role("textbox", name="Message")
        box.fill(text)
        box.press("Enter")
    return asked.value


def test_attach_paste_and_drop_send_view_reload_and_screenshot(axe_page: RecordedPage, vision_server: str) -> None:
    assert AXE.is_file(), "run `npm ci` first"
    page = open_page(axe_page, vision_server)
    set_settings(page, {"Max tokens": "8", "Temperature": "0"})
    page.set_input_files("#attach-file", [file("red.png", RED, "image/png")])
    chips = pending(page).locator("[data-part=file-name]")
    expect(chips).to_have_text(["red.png"], timeout=30_000)
    paste(page, "image.png", BLUE)
    expect(chips).to_have_text(["red.png", "image.png"], timeout=30_000)
    drop(page, "wide.png", WIDE)
    expect(chips).to_have_text(["red.png", "image.png", "wide.png"], timeout=30_000)
    expect(pending(page).locator("[data-part=image] img")).to_have_count(3)  # each chip shows its thumbnail
    expect(page.get_by_role("button", name="Remove wide.png")).to_be_visible()
    expect(page.locator("#attach-note")).to_be_empty()
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []  # the thumbnail chips and their Remove buttons

    asked = send(page, "What colours are these?")
    red, blue, wide = sent_images(asked)
    assert red == data_url(RED) and blue == data_url(BLUE)  # small enough: sent as they came, byte for byte
    assert size_of(decoded(wide)) == (1568, 784)  # scaled down in the page, its shape kept
    expect(pending(page)).to_be_hidden()
    question = page.locator("li[data-role=user]").last
    expect(thumbnails(question)).to_have_count(3)
    expect(question.locator("[data-part=bubble]")).to_have_text("What colours are these?")
    wait_answer(page)

    question.get_by_role("button", name="Open image wide.png").click()
    viewer = page.get_by_role("dialog", name="wide.png")
    expect(viewer).to_be_visible()
    expect(viewer.get_by_role("img", name="wide.png")).to_be_visible()
    assert page.evaluate("document.getElementById('image-view-img').naturalWidth") == 1568  # full size
    assert page.evaluate(RUN_AXE) == []  # the open viewer
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()
    assert page.evaluate(RUN_AXE) == []  # the sent message's thumbnails
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(RUN_AXE) == []

    page.reload()  # the images come back from the page's own store
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
    question = page.locator("li[data-role=user]").last
    expect(thumbnails(question)).to_have_count(3)
    sources = thumbnails(question).evaluate_all("images => images.map(i => i.src)")
    assert all(src.startswith("blob:") for src in sources), sources
    assert page.evaluate("[...document.querySelectorAll('[data-part=images] img')].every(i => i.naturalWidth > 0)")
    asked = send(page, "And now?")  # the history's images go again, from the store
    history = json.loads(asked.post_data)["conversation"]["messages"]
    assert history[0]["images"] == [red, blue, wide] and "images" not in history[-1]
    wait_answer(page)
    assert_only_loopback(axe_page)
    assert axe_page.errors == []


def test_export_and_import_bring_the_images_back(chromium: Any, recorded_page: RecordedPage,
                                                   vision_server: str, tmp_path: Path) -> None:
    page = open_page(recorded_page, vision_server)
    set_settings(page, {"Max tokens": "4"})
    page.set_input_files("#attach-file", [file("red.png", RED, "image/png"), file("anim.gif", GIF, "image/gif")])
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["red.png", "anim.gif"], timeout=30_000)
    red, first_frame = sent_images(send(page, "Describe"))
    assert size_of(decoded(first_frame)) == (2, 1)  # a GIF goes as its first frame, a PNG
    wait_answer(page)
    with page.expect_download() as download:
        export_chat(page, "Export as JSON (.json)")
    exported = tmp_path / "chat.json"
    download.value.save_as(exported)
    images = json.loads(exported.read_text())["images"]
    assert sorted(base64.b64decode(i["data"]) for i in images.values()) == sorted([RED, decoded(first_frame)])

    other = RecordedPage(chromium)  # a browser with nothing stored
    try:
        page = open_page(other, vision_server)
        page.set_input_files("#import-file", str(exported))
        question = page.locator("li[data-role=user]").first
        expect(thumbnails(question)).to_have_count(2, timeout=30_000)
        set_settings(page, {"Max tokens": "4"})
        asked = send(page, "Again")
        assert json.loads(asked.post_data)["conversation"]["messages"][0]["images"] == [red, first_frame]
        wait_answer(page)
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
        expect(thumbnails(page.locator("li[data-role=user]").first)).to_have_count(2)
        assert_only_loopback(other)
        assert other.errors == []
    finally:
        other.context.close()


def test_a_model_without_vision_gets_no_image_and_nothing_typed_is_lost(
    recorded_page: RecordedPage, vision_server: str
) -> None:
    page = open_page(recorded_page, vision_server)
    box = page.get_by_role("textbox", name="Message")
    page.set_input_files("#attach-file", [file("red.png", RED, "image/png")])
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["red.png"], timeout=30_000)
    # chosen after attaching: the check before sending says so
    page.get_by_label("Model", exact=True).select_option(TEXT_MODEL)
    box.fill("What is this?")
    page.get_by_role("button", name="Send").click()
    note = page.locator("#attach-note")
    expect(note).to_have_text(no_vision("red.png", TEXT_MODEL))
    expect(box).to_have_value("What is this?")
    expect(page.locator("li[data-role]")).to_have_count(0)

    page.get_by_role("button", name="Remove red.png").click()
    page.set_input_files("#attach-file", [file("blue.png", BLUE, "image/png")])  # attached to it: refused at once
    expect(note).to_have_text(no_vision("blue.png", TEXT_MODEL))
    expect(pending(page)).to_be_hidden()
    expect(box).to_have_value("What is this?")
    assert not [url for url in recorded_page.requests if url.endswith(CONVERSE)]
    assert_only_loopback(recorded_page)
    assert recorded_page.errors == []


def test_a_full_storage_quota_says_so_and_loses_no_chat(recorded_page: RecordedPage, vision_server: str) -> None:
    # Chromium takes a quota override only before the origin first stores anything: room for the
    # page's records and a chat, not for a photo of about 480 kB that no compression shrinks.
    cdp = recorded_page.context.new_cdp_session(recorded_page.page)
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": vision_server, "quotaSize": QUOTA})
    page = open_page(recorded_page, vision_server)
    set_settings(page, {"Max tokens": "4"})
    send(page, FIRST)
    wait_answer(page)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")
    photo = noise(400, 400)
    page.set_input_files("#attach-file", [file("photo.png", photo, "image/png")])
    expect(page.locator("#attach-note")).to_have_text(f"{STORAGE_FULL} (photo.png)", timeout=30_000)
    expect(pending(page).locator("[data-part=file-name]")).to_have_text(["photo.png"])  # attached all the same
    asked = send(page, "Sent all the same")
    assert sent_images(asked) == [data_url(photo)]
    wait_answer(page)
    expect(page.locator("body")).not_to_have_attribute("data-saving", "true")

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=PYTHON_READY_S * 1000)
    chats = page.locator("#chat-list")
    chats.get_by_role("button", name=FIRST, exact=True).click()
    expect(page.locator("li[data-role=user] [data-part=bubble]")).to_have_text([FIRST])
    expect(page.locator("li[data-role=model]")).to_have_attribute("data-status", "done")
    assert page.locator("li[data-role=model] [data-part=bubble]").inner_text().strip()
    assert recorded_page.errors == []
