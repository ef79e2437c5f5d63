"""Images in the page's logic, on CPython: sizes after scaling, types, the refusal lines, what a
chat's record and request hold, export and import with the images' bytes, the store of pictures
(a full one changes nothing stored), and the app attaching, refusing and sending images. The
browser's canvas and IndexedDB are tested in tests/browser/test_images.py."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from client import images
from client import library as lib
from client.app import App
from client.attachments import Picked
from client.images import GIF, JPEG, PNG, WEBP, ImageRef, Prepared
from client.pictures import HELD, LOST, MemoryStore, Picture, Pictures, StorageFull, referenced
from client.state import Chat, Turn, images_in, request_for, submit, title_of
from tests.fakes import DONE, FakeStore
from tests.harness import run_async
from tests.pngs import size_of
from tests.tinyprojector import png
from wire.events import ErrorEvent, TokenEvent
from wire.types import MAX_IMAGES, Health, ModelInfo, ModelList, TokenCount, TokensRequest

RED = png(4, 3, (255, 0, 0))
RED_REF = ImageRef("red.png", images.digest_of(RED), PNG, 4, 3, len(RED))


def test_sizes_after_scaling_keep_the_shape_and_the_bound() -> None:
    assert images.fitted(800, 600) == (800, 600)
    assert images.fitted(1568, 10) == (1568, 10)
    assert images.fitted(2400, 1200) == (1568, 784)
    assert images.fitted(1000, 4000) == (392, 1568)
    assert images.fitted(100_000, 1) == (1568, 1)  # never a side of 0 pixels
    assert images.redrawn(PNG, 1568, 1568) is False and images.redrawn(PNG, 1569, 20) is True
    assert images.redrawn(GIF, 2, 1) is True  # a GIF always: its first frame
    assert [images.sent_type(t) for t in (PNG, JPEG, WEBP, GIF)] == [PNG, JPEG, WEBP, PNG]


def test_types_by_first_bytes_and_names() -> None:
    assert images.sniff(RED) == PNG
    assert images.sniff(b"\xff\xd8\xff\xe0rest") == JPEG
    assert images.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == WEBP
    assert images.sniff(b"GIF89a...") == GIF and images.sniff(b"GIF87a...") == GIF
    assert images.sniff(b"<svg/>") == "" and images.sniff(b"\x89PNG") == ""
    assert images.named_image("Photo.JPEG") and images.named_image("blob", "image/webp")
    assert not images.named_image("drawing.svg", "image/svg+xml")  # an SVG is text: it goes as a file
    assert images.too_big("a.png", images.MAX_IMAGE_BYTES) == ""
    assert images.too_big("a.png", images.MAX_IMAGE_BYTES + 1).startswith("a.png is too big")


def test_the_lines_the_page_says() -> None:
    assert images.no_vision("red.png", "gemma-3-270m-q4_k_m.gguf") == (
        "red.png: this model does not take images (gemma-3-270m-q4_k_m.gguf)"
    )
    assert images.STORAGE_FULL == "Storage is full: this image was not saved; your chats are intact"
    assert images.lost("red.png") == "red.png (not saved)"


def test_a_chat_record_names_images_by_digest_and_its_request_carries_them() -> None:
    chat = submit(Chat(id="c"), "", 1.0, images=(RED_REF,))
    assert title_of(chat) == "red.png"  # a message of images only is named after them
    record = json.loads(lib.record_of(chat))
    assert record["turns"][0]["images"] == [
        {"name": "red.png", "digest": RED_REF.digest, "type": PNG, "width": 4, "height": 3, "size": len(RED)}
    ]
    assert base64.b64encode(RED).decode() not in lib.record_of(chat)  # never the bytes
    url = images.data_url(PNG, RED)
    sent = request_for(chat, image_url=lambda image: url if image == RED_REF else "")
    assert sent.conversation.messages[0].images == [url]
    assert request_for(chat).conversation.messages[0].images == []  # one this browser lost goes without
    assert referenced(lib.records(lib.Library(chats=(chat,), open_id="c"))) == {RED_REF.digest}


def test_export_and_import_carry_the_images_exactly() -> None:
    chat = submit(Chat(id="c", title="Colours"), "What is it?", 1.0, images=(RED_REF,))
    library = lib.Library(chats=(chat,), open_id="c")
    pictures = {RED_REF.digest: Picture(PNG, RED)}
    for text in (lib.export_json(chat, pictures=pictures.get), lib.export_all_json(library, pictures.get)):
        assert lib.pictures_in(text) == pictures
        imported = lib.import_many(text, lambda: "new", 2.0)
        assert imported.chats[0].turns[0].images == (RED_REF,)
    exported = json.loads(lib.export_json(chat, pictures=pictures.get))
    assert base64.b64decode(exported["images"][RED_REF.digest]["data"]) == RED
    exported["images"][RED_REF.digest]["data"] = base64.b64encode(png(4, 3, (0, 0, 255))).decode()
    assert lib.pictures_in(json.dumps(exported)) == {}  # bytes that are not the digest's are left out
    assert lib.pictures_in("not json") == {}
    older = lib.export_json(chat)  # nothing to carry: an export as before images
    assert "images" not in json.loads(older) or json.loads(older)["images"] == {}
    assert "*Image: red.png*" in lib.export_markdown(chat)


def test_images_in_counts_earlier_versions_too() -> None:
    blue = ImageRef("blue.png", "b" * 64, PNG)
    chat = submit(Chat(id="c"), "first", 1.0, images=(RED_REF,))
    chat = Chat(id="c", turns=chat.turns + (Turn(user=False, text="ok"),))
    from client.state import edit

    edited = edit(chat, 0, "second", 2.0, images=(blue,))
    assert images_in(edited) == (blue, RED_REF)


class FullStore(MemoryStore):
    async def put(self, digest: str, picture: Picture) -> None:
        raise StorageFull("quota")


def test_pictures_are_held_loaded_and_collected_and_a_full_store_changes_nothing() -> None:
    async def run() -> None:
        store = MemoryStore()
        pictures = Pictures(store)
        digest = await pictures.keep(Picture(PNG, RED))
        assert digest == RED_REF.digest and store.pictures[digest] == Picture(PNG, RED)
        assert pictures.state(digest) == HELD and pictures.url(RED_REF) == images.data_url(PNG, RED)

        later = Pictures(store)  # a reload: nothing in memory yet
        assert later.state(digest) == "" and later.url(RED_REF) == ""
        await later.load([RED_REF, ImageRef("gone.png", "f" * 64, PNG)])
        assert later.state(digest) == HELD and later.state("f" * 64) == LOST
        await store.put("0" * 64, Picture(PNG, b"orphan"))
        assert await later.collect({digest}) == 1 and set(store.pictures) == {digest}

        full = Pictures(FullStore())
        with pytest.raises(StorageFull):
            await full.keep(Picture(PNG, RED))
        assert full.state(digest) == HELD  # this page still shows and sends it

    run_async(run())


# -- the app -----------------------------------------------------------------------------------


class VisionServer:
    """A fake of the RPC client: two models, one with vision; an image costs 18 tokens."""

    def __init__(self, *answers: list[object], n_ctx: int = 100) -> None:
        self.answers, self.n_ctx = list(answers), n_ctx
        self.calls: list[object] = []
        self.counted: list[TokensRequest] = []
        self.api_key = ""

    def use_key(self, key: str) -> None:
        self.api_key = key

    async def count_tokens(self, request: TokensRequest) -> TokenCount | ErrorEvent:
        self.counted.append(request)
        tokens = len(request.text) + 18 * len(request.images)
        return TokenCount(request.model or "eyes.gguf", tokens, 10, self.n_ctx, 50)

    def converse(self, request: object) -> object:
        self.calls.append(request)
        events = self.answers.pop(0)

        async def stream() -> object:
            for event in events:
                yield event

        return stream()

    async def models(self) -> ModelList:
        return ModelList("eyes.gguf", [ModelInfo("eyes.gguf", True, n_ctx=100, vision=True),
                                       ModelInfo("text.gguf", True, n_ctx=100)])


async def identity(kind: str, data: bytes) -> Prepared:
    width, height = size_of(data)
    return Prepared(kind, data, width, height)


def picked(name: str, data: bytes) -> Picked:
    async def read() -> bytes:
        return data

    return Picked(name, len(data), read, PNG)


def vision_app(server: VisionServer, store: MemoryStore | None = None) -> App:
    app = App(server, FakeStore(), store or MemoryStore())  # type: ignore[arg-type]
    app.prepare_image = identity
    app.models.set(ModelList("eyes.gguf", [ModelInfo("eyes.gguf", True, n_ctx=100, vision=True),
                                           ModelInfo("text.gguf", True, n_ctx=100)]))
    app.health.set(Health("ok", model="eyes.gguf", vision=True))
    return app


async def settle(app: App) -> None:
    import asyncio

    while app.tasks:
        await asyncio.gather(*list(app.tasks))


def test_an_image_is_counted_kept_and_sent_and_refused_for_a_model_without_vision() -> None:
    async def run() -> None:
        server = VisionServer([TokenEvent(text="Red."), DONE])
        store = MemoryStore()
        app = vision_app(server, store)
        await app.attach([picked("red.png", RED)])
        assert app.attach_note() == ""
        (pending,) = app.attached()
        assert pending.file == RED_REF and pending.tokens == 18
        assert server.counted[-1].images == [images.data_url(PNG, RED)] and server.counted[-1].text == ""
        assert store.pictures[RED_REF.digest] == Picture(PNG, RED)

        app.choose_model("text.gguf")  # the check before sending: nothing goes, the text stays the caller's
        assert app.send("What is it?") is False
        assert app.attach_note() == images.no_vision("red.png", "text.gguf")
        assert not server.calls and app.attached() == (pending,)
        await app.attach([picked("blue.png", png(2, 2, (0, 0, 255)))])
        assert app.attach_note() == images.no_vision("blue.png", "text.gguf")
        assert len(server.counted) == 1  # refused before being read or counted

        app.choose_model("eyes.gguf")
        assert app.send("What is it?") is True
        await settle(app)
        sent = server.calls[0].conversation.messages[0]  # type: ignore[attr-defined]
        assert sent.images == [images.data_url(PNG, RED)] and sent.text == "What is it?"
        assert app.current.turns[0].images == (RED_REF,)

    run_async(run())


def test_a_full_store_says_so_and_the_image_is_attached_all_the_same() -> None:
    async def run() -> None:
        app = vision_app(VisionServer())
        app.pictures = Pictures(FullStore())
        await app.attach([picked("red.png", RED)])
        assert [p.file for p in app.attached()] == [RED_REF]
        assert app.storage_note() == images.storage_full("red.png")
        assert app.pictures.url(RED_REF)  # held for this page

    run_async(run())


def test_an_image_too_many_or_unreadable_or_too_big_for_the_context_is_refused() -> None:
    async def run() -> None:
        app = vision_app(VisionServer(n_ctx=10_000))

        async def broken(kind: str, data: bytes) -> Prepared:
            raise RuntimeError("EncodingError: The source image cannot be decoded.")

        app.prepare_image = broken
        await app.attach([picked("bad.png", RED)])
        assert app.attach_note() == images.unreadable("bad.png", "EncodingError: The source image cannot be decoded.")
        app.prepare_image = identity
        await app.attach([picked(f"{n}.png", png(1, 1, (n, 0, 0))) for n in range(MAX_IMAGES + 1)])
        assert len(app.attached()) == MAX_IMAGES
        assert app.attach_note() == images.too_many(f"{MAX_IMAGES}.png", MAX_IMAGES)
        small = vision_app(VisionServer(n_ctx=70))  # 10 overhead + 50 for the answer: no room for 18
        await small.attach([picked("red.png", RED)])
        assert small.attach_note() == "red.png is 18 tokens; this chat's model takes 70, 50 of them kept for the answer"

    run_async(run())


def test_an_imported_chat_brings_its_images_into_the_store() -> None:
    async def run() -> None:
        chat = submit(Chat(id="c"), "Look", 1.0, images=(RED_REF,))
        text = lib.export_json(chat, pictures={RED_REF.digest: Picture(PNG, RED)}.get)
        store = MemoryStore()
        app = vision_app(VisionServer(), store)
        await app.import_chat(text)
        assert store.pictures == {RED_REF.digest: Picture(PNG, RED)}
        assert app.current.turns[0].images == (RED_REF,)
        exported = await app.export_file("json")
        assert exported is not None and lib.pictures_in(exported.text) == store.pictures
        assert msgspec.json.decode(exported.text)["images"]  # round trip: the same bytes again

    run_async(run())
