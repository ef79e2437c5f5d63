"""The browser app's state and actions (client.app) on CPython, with a fake server and store."""

from __future__ import annotations

import asyncio

import msgspec

from client import images, settings
from client import library as lib
from client.app import API_KEY, LAST_MODEL, App
from client.attachments import MAX_FILE_BYTES, Attachment, Picked
from client.components.api_key_dialog import ASK, REFUSED, title_for
from client.errors import CONNECTION_LOST, NOT_OURS, SERVER_DOWN, TOO_LONG
from client.pdf import MAX_PDF_BYTES
from client.presets import BUILT_IN
from client.rpc import UNAUTHORIZED
from client.streams import NEEDS_KEY, KeyRequest
from tests.fakes import DONE, FakeServer, FakeStore, mid_answer
from tests.harness import run_async
from tests.pdfs import SCAN, pdf
from wire.events import DoneEvent, ErrorEvent, Event, LoadingEvent, TokenEvent
from wire.types import (
    MAX_TEXT,
    Health,
    ModelInfo,
    ModelList,
    SamplingParams,
    TemplateInfo,
    TokenCount,
    TokensRequest,
)


async def settle(app: App) -> None:
    """Let every task the app started run to its end."""
    while app.tasks:
        await asyncio.gather(*list(app.tasks))


def test_an_answer_streams_into_its_chat_with_the_saved_settings() -> None:
    async def run() -> None:
        store = FakeStore({settings.SETTINGS_KEY: settings.dump(SamplingParams(max_tokens=8))})
        server = FakeServer([TokenEvent(text="Hel"), TokenEvent(text="lo"), DONE])
        app = App(server, store)
        app.send("Hi")
        assert app.current.busy
        await settle(app)
        turns = app.current.turns
        assert [(t.user, t.text, t.status) for t in turns] == [(True, "Hi", "done"), (False, "Hello", "done")]
        assert server.calls[0][1].params.max_tokens == 8
        assert server.calls[0][1].conversation.messages[0].text == "Hi"
        assert "hi" in app.records()[f"chat:{app.current.id}"].lower()

    run_async(run())


def test_a_refused_answer_asks_for_a_key_then_retries_with_it() -> None:
    async def run() -> None:
        refused: list[Event] = [ErrorEvent(type=UNAUTHORIZED, message="missing key")]
        store = FakeStore()
        server = FakeServer(refused, refused, [TokenEvent(text="ok"), DONE])
        app = App(server, store)
        app.send("Hi")
        await settle(app)
        chat_id = app.current.id
        assert app.key_request() == KeyRequest(chat_id, wrong=False)
        assert app.current.turns[-1].text == NEEDS_KEY and app.current.turns[-1].status == "error"

        app.use_key("  wrong  ")
        assert app.key_request() is None  # the dialog closes while the retry runs
        await settle(app)
        assert app.key_request() == KeyRequest(chat_id, wrong=True)

        app.use_key("right")
        await settle(app)
        assert app.key_request() is None
        assert [key for key, _ in server.calls] == ["", "wrong", "right"]
        assert app.current.turns[-1].text == "ok" and len(app.current.turns) == 2
        assert store[API_KEY] == "right" and store.syncs >= 2

    run_async(run())


def test_a_kept_key_is_sent_from_the_start() -> None:
    server = FakeServer()
    App(server, FakeStore({API_KEY: "kept"}))
    assert server.api_key == "kept"


def test_key_dialog_title() -> None:
    assert title_for(False) == ASK == "API key needed"
    assert title_for(True) == REFUSED == "That API key was refused"


class Clock:
    """The app's sleep, counted and instant; the server comes back after `back_after` looks."""

    def __init__(self, server: FakeServer, back_after: int) -> None:
        self.server, self.back_after = server, back_after
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) == self.back_after:
            self.server.said = Health(status="ok", template=TemplateInfo(name="gemma3", source="gguf"))


def test_the_banner_clears_by_itself_once_the_server_is_back() -> None:
    async def run() -> None:
        server = FakeServer([ErrorEvent(type="network", message="TypeError: network error")], health=None)
        app = App(server, FakeStore())
        clock = Clock(server, back_after=8)
        app.sleep = clock.sleep
        assert app.banner() is None
        assert not await app.check_health()
        assert app.banner() == SERVER_DOWN and app.health() is None
        await settle(app)
        assert clock.slept == [1, 2, 4, 8, 16, 30, 30, 30]  # it kept looking, ever less often, up to 30 s
        assert app.banner() is None and app.health() == server.said

        server.said = None
        app.send("Hi")  # the answer finds the server gone: the page looks again, on its own
        clock.slept, clock.back_after = [], 2
        await settle(app)
        assert clock.slept == [1, 2] and app.banner() is None  # the backoff starts over
        assert app.current.turns[-1].text == CONNECTION_LOST and app.current.turns[-1].status == "error"

    run_async(run())


def test_retry_looks_at_once_and_one_loop_looks_at_a_time() -> None:
    async def run() -> None:
        server = FakeServer(health=None)
        app = App(server, FakeStore())
        gate = asyncio.Event()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            await gate.wait()

        app.sleep = sleep
        await app.check_health()
        await app.check_health()  # Retry while the loop waits: no second loop
        await asyncio.sleep(0)
        assert slept == [1]
        server.said = Health(status="ok")
        assert await app.check_health() and app.banner() is None
        gate.set()
        await settle(app)
        assert slept == [1]  # the loop saw the server back, and ended

    run_async(run())


def test_a_message_over_the_bound_is_not_sent_and_says_why() -> None:
    server = FakeServer()
    app = App(server, FakeStore())
    assert not app.send("x" * (MAX_TEXT + 1))
    assert app.attach_note() == TOO_LONG and server.calls == [] and not app.current.turns


def test_continue_after_a_length_stop_joins_the_same_answer() -> None:
    async def run() -> None:
        cut: list[Event] = [TokenEvent(text="One, two,"), DoneEvent("length", 5, 4, 0.1, 10.0)]
        server = FakeServer(cut, [TokenEvent(text=" three."), DONE])
        app = App(server, FakeStore())
        app.send("Count")
        await settle(app)
        assert app.current.turns[-1].unfinished and "max tokens" in app.current.turns[-1].note
        app.continue_answer(app.current.id)
        assert app.current.busy and app.current.turns[-1].text == "One, two,"
        await settle(app)
        asked = server.calls[-1][1]
        assert asked.continue_ and asked.conversation.messages[-1].text == "One, two,"
        assert asked.conversation.messages[-1].user is False
        assert [t.text for t in app.current.turns] == ["Count", "One, two, three."]
        assert not app.current.turns[-1].unfinished
        app.continue_answer(app.current.id)  # a finished answer has nothing to go on with
        assert not app.current.busy and len(server.calls) == 2

    run_async(run())


def test_a_message_is_not_sent_while_the_open_chat_s_answer_is_resumed() -> None:
    """main.py puts the text back in the box when `send` says it was not sent."""
    app = App(FakeServer(), reloaded_mid_answer("The wh"))
    assert app.send("typed while the page loaded") is False
    assert [t.text for t in app.current.turns] == ["Hi", "The wh"]


def reloaded_mid_answer(stale: str) -> FakeStore:
    """What the page had saved when it went away: an answer the server named, partly written."""
    return FakeStore(lib.records(mid_answer(stale)))


def test_edit_export_and_import() -> None:
    async def run() -> None:
        app = App(FakeServer([TokenEvent(text="A"), DONE], [TokenEvent(text="B"), DONE]), FakeStore())
        assert await app.export_file("md") is None  # nothing to export yet
        app.send("First")
        await settle(app)
        assert app.start_edit(0) == "First"
        app.send("Second")
        await settle(app)
        assert [t.text for t in app.current.turns] == ["Second", "B"] and app.editing() is None

        exported = await app.export_file("json")
        assert exported is not None and exported.mime == "application/json"
        assert exported.filename.endswith(".json")
        before = app.current.id
        # The same chat again: nothing changes until the user says Keep both or Replace.
        assert await app.import_chat(exported.text)
        offer = app.import_offer()
        assert offer is not None and offer.titles == ("Second",) and len(app.library().chats) == 1
        app.settle_import("keep")
        assert app.import_offer() is None and len(app.library().chats) == 2
        assert app.current.id != before and [t.text for t in app.current.turns] == ["Second", "B"]

        await app.import_chat(exported.text)  # again: matched by its id, its one copy replaced
        app.settle_import("replace")
        assert len(app.library().chats) == 2 and app.current.id == before
        await app.import_chat(exported.text)
        app.settle_import("cancel")
        assert len(app.library().chats) == 2

        markdown = await app.export_file("md")
        assert markdown is not None
        await app.import_chat(markdown.text)  # no id in Markdown: known by its title and messages
        assert app.import_offer() is not None
        app.settle_import("keep")
        assert len(app.library().chats) == 3 and [t.text for t in app.current.turns] == ["Second", "B"]

        assert not await app.import_chat("not json") and app.import_note() == NOT_OURS
        assert not await app.import_chat('{"format": "x"}') and app.import_note() == NOT_OURS
        assert await app.import_chat(exported.text.replace(before, "other-id"))  # another chat: no question
        assert app.import_note() == "" and app.import_offer() is not None  # ...but the same title and text

    run_async(run())


def test_regenerate_keeps_versions_and_the_visible_one_is_sent() -> None:
    async def run() -> None:
        server = FakeServer([TokenEvent(text="A"), DONE], [TokenEvent(text="B"), DONE], [TokenEvent(text="C"), DONE])
        app = App(server, FakeStore())
        app.send("Q")
        await settle(app)
        app.regenerate(app.current.id)
        await settle(app)
        assert [t.text for t in app.current.turns] == ["Q", "B"]
        app.switch_version(1, -1)
        assert [t.text for t in app.current.turns] == ["Q", "A"]
        app.send("More")
        await settle(app)
        assert [m.text for m in server.calls[-1][1].conversation.messages] == ["Q", "A", "More"]
        reloaded = App(FakeServer(), FakeStore(app.records()))
        assert [t.text for t in reloaded.current.turns] == ["Q", "A", "More", "C"]
        reloaded.switch_version(1, 1)
        assert [t.text for t in reloaded.current.turns] == ["Q", "B"]

    run_async(run())


TWO_MODELS = ModelList(
    default="big.gguf",
    models=[
        ModelInfo(name="big.gguf", usable=True, engine="llama-cpp", n_ctx=4096),
        ModelInfo(name="tiny.gguf", usable=True, engine="llama-cpp", n_ctx=2048),
        ModelInfo(name="notes.txt", usable=False, reason="not a GGUF or GGML file"),
    ],
)


def test_the_chats_model_is_asked_and_a_new_chat_starts_on_the_last_one_used() -> None:
    async def run() -> None:
        store = FakeStore()
        server = FakeServer(
            [LoadingEvent(model="tiny.gguf"), TokenEvent(text="Paris"), done_by("tiny.gguf")],
            [TokenEvent(text="Rome"), done_by("big.gguf")],
            [TokenEvent(text="again"), done_by("tiny.gguf")],
            models=TWO_MODELS,
        )
        app = App(server, store)
        await app.check_health()
        assert app.models() == TWO_MODELS
        assert app.chosen_model() == ""  # nothing used yet: the server's default

        app.choose_model("tiny.gguf")  # before any chat: it opens one on that model
        first = app.current.id
        assert app.chosen_model() == "tiny.gguf" and store[LAST_MODEL] == "tiny.gguf"
        app.send("Capital of France?")
        await settle(app)
        assert server.calls[0][1].model == "tiny.gguf"
        assert app.current.turns[-1].model == "tiny.gguf" and app.current.turns[-1].text == "Paris"

        app.new_chat()
        assert app.current.id != first and app.chosen_model() == "tiny.gguf"  # the last model used
        app.choose_model("big.gguf")
        app.send("Capital of Italy?")
        await settle(app)
        assert server.calls[1][1].model == "big.gguf" and app.current.turns[-1].model == "big.gguf"

        app.open_chat(first)  # each chat keeps its own model
        assert app.chosen_model() == "tiny.gguf"
        app.regenerate(first)
        await settle(app)
        assert server.calls[2][1].model == "tiny.gguf"
        assert store[LAST_MODEL] == "tiny.gguf"  # regenerating uses the chat's model too

        # Reloaded: chats keep their models, and a new chat starts on the last one used.
        app.open_chat(app.library().ordered[-1].id)
        assert app.current.model == "big.gguf"
        again = App(FakeServer(models=TWO_MODELS), FakeStore(store | app.records()))
        await again.check_health()
        assert again.current.model == "big.gguf"
        again.new_chat()
        assert again.current.model == "tiny.gguf"

    run_async(run())


def done_by(model: str) -> DoneEvent:
    return DoneEvent(
        stop_reason="stop", prompt_tokens=3, completion_tokens=1, ttft_s=0.1, tokens_per_s=10.0, model=model
    )


def test_a_last_model_the_server_no_longer_offers_is_not_where_new_chats_start() -> None:
    async def run() -> None:
        app = App(FakeServer(models=TWO_MODELS), FakeStore({LAST_MODEL: "gone.gguf"}))
        assert app.start_model() == "gone.gguf"  # not known yet to be gone
        await app.check_health()
        assert app.start_model() == ""
        app.last_model.set("notes.txt")  # listed, but not usable
        assert app.start_model() == ""

    run_async(run())


def test_without_api_models_the_page_asks_the_default_as_before() -> None:
    async def run() -> None:
        server = FakeServer([TokenEvent(text="hi"), DONE], health=Health(status="ok", model="gemma.gguf"), models=None)
        app = App(server, FakeStore())
        await app.check_health()
        assert app.models() is None and app.default_model() == "gemma.gguf"
        app.send("Hi")
        await settle(app)
        assert server.calls[0][1].model is None
        # The older server names no model in `done`: the answer still says which wrote it.
        assert app.current.turns[-1].model == "gemma.gguf"

    run_async(run())


def test_a_failed_refresh_keeps_the_list() -> None:
    async def run() -> None:
        server = FakeServer(models=TWO_MODELS)
        app = App(server, FakeStore())
        await app.refresh_models()
        server.offered = None
        await app.refresh_models()
        assert app.models() == TWO_MODELS

    run_async(run())


# Attachments.


class CountingServer(FakeServer):
    """Counts a token per character (or says it cannot), with a context of `n_ctx`."""

    def __init__(self, *answers: list[Event], n_ctx: int = 1000, reachable: bool = True) -> None:
        super().__init__(*answers)
        self.n_ctx, self.reachable = n_ctx, reachable
        self.counted: list[TokensRequest] = []

    async def count_tokens(self, request: TokensRequest) -> TokenCount | ErrorEvent:
        self.counted.append(request)
        if not self.reachable:
            return ErrorEvent(type="network", message="Cannot reach the server: TypeError: Failed to fetch")
        return TokenCount(request.model or "m.gguf", len(request.text), 10, self.n_ctx, 512)


def picked(name: str, data: bytes) -> Picked:
    async def read() -> bytes:
        return data

    return Picked(name, len(data), read)


def attach_app(server: CountingServer, max_tokens: int = 100) -> App:
    store = FakeStore({settings.SETTINGS_KEY: settings.dump(SamplingParams(max_tokens=max_tokens))})
    return App(server, store)


def test_files_are_attached_counted_with_the_chat_s_model_sent_fenced_then_cleared() -> None:
    async def run() -> None:
        server = CountingServer([TokenEvent(text="It greets."), DONE])
        app = attach_app(server)
        app.choose_model("other.gguf")
        await app.attach([picked("greet.py", b"print('hi')\n"), picked("photo.png", b"\x89PNG\x00")])
        assert [p.file.name for p in app.attached()] == ["greet.py"]
        assert app.attach_note() == images.unreadable("photo.png", "not a PNG, JPEG, WebP or GIF")
        block = "File: greet.py\n```python\nprint('hi')\n```"
        assert server.counted == [TokensRequest(text=block, model="other.gguf")]
        app.send("")  # files only
        await settle(app)
        assert server.calls[0][1].conversation.messages[-1].text == block
        assert app.attached() == () and app.attach_note() == ""
        assert app.current.turns[0].files == (Attachment("greet.py", "print('hi')\n"),)

    run_async(run())


def test_each_chat_sends_its_own_system_prompt_and_preset_over_the_global_settings() -> None:
    async def run() -> None:
        own = "You are a pirate.\n\n  One word only.\n"
        store = FakeStore({settings.SETTINGS_KEY: settings.dump(SamplingParams(max_tokens=8, system="Global."))})
        server = FakeServer([DONE], [DONE], [DONE])
        app = App(server, store)
        app.configure_chat(own, "Precise")  # no chat open: a new one, like the first send
        app.send("Ahoy")
        await settle(app)
        precise = BUILT_IN["Precise"]
        assert server.calls[0][1].params == msgspec.structs.replace(precise, max_tokens=8, system=own)
        first = app.current.id
        app.new_chat()
        assert (app.current.system, app.current.preset) == (None, "")  # a new chat starts on defaults
        app.send("Plain")
        await settle(app)
        assert server.calls[1][1].params == SamplingParams(max_tokens=8, system="Global.")
        app.open_chat(first)
        app.configure_chat("", "")  # no system prompt at all, the global sampling values
        app.send("Again")
        await settle(app)
        assert server.calls[2][1].params == SamplingParams(max_tokens=8, system="")  # "": the server's none
        assert '"system":""' in app.records()[f"chat:{first}"]  # kept with the chat

    run_async(run())


def test_a_file_that_cannot_fit_the_context_is_refused_and_nothing_is_sent() -> None:
    async def run() -> None:
        server = CountingServer(n_ctx=300)
        app = attach_app(server, max_tokens=100)
        await app.attach([picked("a.txt", b"a" * 100)])  # 10 + 120 (fenced) + 100 <= 300
        await app.attach([picked("b.txt", b"b" * 100)])  # with a.txt's 120 it is not
        assert [p.file.name for p in app.attached()] == ["a.txt"]
        assert app.attach_note() == (
            "b.txt is 120 tokens; this chat's model takes 300, 100 of them kept for the answer"
            " and 120 used by the other files"
        )
        app.remove_attachment(0)
        assert app.attached() == ()
        app.send("  ")
        await settle(app)
        assert server.calls == [] and app.current.turns == ()

    run_async(run())


def test_files_are_counted_with_the_chat_s_own_system_prompt_and_preset_budget() -> None:
    async def run() -> None:
        server = CountingServer(n_ctx=400)
        app = attach_app(server, max_tokens=100)
        assert app.save_preset("Long", SamplingParams(max_tokens=250)) == ""
        app.configure_chat("Be brief.", "Long")
        await app.attach([picked("a.txt", b"a" * 100)])  # 10 + 120 (fenced) + 250 <= 400
        await app.attach([picked("b.txt", b"b" * 100)])
        assert [r.system for r in server.counted] == ["Be brief.", "Be brief."]
        assert [p.file.name for p in app.attached()] == ["a.txt"]
        assert "250 of them kept for the answer" in app.attach_note()
        app.configure_chat("", "")  # none at all: counted as such
        await app.attach([picked("c.txt", b"c")])
        assert server.counted[-1].system == ""

    run_async(run())


def test_typed_text_counts_towards_a_message_s_bound() -> None:
    async def run() -> None:
        server = CountingServer([DONE], n_ctx=10 * MAX_TEXT)
        app = attach_app(server)
        await app.attach([picked("half.txt", b"h" * (MAX_TEXT // 2))], typed="t" * (MAX_TEXT // 2))
        assert app.attached() == () and "and the text typed" in app.attach_note()
        await app.attach([picked("half.txt", b"h" * (MAX_TEXT // 2))])
        assert app.send("t" * (MAX_TEXT // 2)) is False  # typed after attaching: refused before sending
        assert app.attach_note().startswith("Not sent: ") and server.calls == []
        assert [p.file.name for p in app.attached()] == ["half.txt"]  # kept, to remove one or shorten the text
        assert app.send("What is it?")
        await settle(app)
        assert len(server.calls) == 1

    run_async(run())


def test_a_file_is_refused_when_its_tokens_cannot_be_counted() -> None:
    async def run() -> None:
        app = attach_app(CountingServer(reachable=False))
        await app.attach([picked("a.txt", b"hello")])
        assert app.attached() == ()
        assert app.attach_note().startswith("a.txt was not attached: its tokens could not be counted (Cannot reach")

    run_async(run())


def test_a_pdf_is_attached_as_its_pages_text_counted_and_sent_and_bad_ones_are_refused_a_line_each() -> None:
    async def run() -> None:
        server = CountingServer([TokenEvent(text="Two pages."), DONE], n_ctx=10_000)
        app = attach_app(server)
        broken = pdf("never read")[:100]
        report = pdf("First page.", "Second page.")
        await app.attach([picked("scan.pdf", pdf(SCAN)), picked("report.pdf", report), picked("broken.pdf", broken)])
        assert [p.file.name for p in app.attached()] == ["report.pdf"]
        assert app.attach_note().split("\n") == [
            "scan.pdf: no text in it (a scanned PDF?); nothing was attached",
            "broken.pdf: not a PDF that can be read (Stream has ended unexpectedly); nothing was attached",
        ]
        block = (
            "File: report.pdf\n```\n"
            "File: report.pdf, page 1\nFirst page.\n\nFile: report.pdf, page 2\nSecond page.\n```"
        )
        assert [r.text for r in server.counted] == [block]  # counted as it will be sent; the refused never
        app.send("How many pages?")
        await settle(app)
        assert server.calls[0][1].conversation.messages[-1].text == f"{block}\n\nHow many pages?"

    run_async(run())


def test_a_pdf_bigger_than_a_text_file_may_be_attached_but_not_one_past_the_pdf_bound() -> None:
    async def run() -> None:
        app = attach_app(CountingServer(n_ctx=10_000))
        data = pdf("Mostly pictures.")

        async def read() -> bytes:
            return data

        await app.attach([Picked("photos.pdf", MAX_FILE_BYTES + 1, read)])  # the bytes the browser says it has
        assert [p.file.name for p in app.attached()] == ["photos.pdf"]
        await app.attach([Picked("huge.pdf", MAX_PDF_BYTES + 1, read)])
        assert app.attach_note().startswith("huge.pdf is too big: ")

    run_async(run())


def test_pdfs_are_refused_saying_so_when_the_pdf_reader_cannot_be_loaded() -> None:
    async def run() -> None:
        server = CountingServer()
        app = attach_app(server)
        loads = []

        async def no_reader() -> None:
            loads.append(1)
            raise RuntimeError("Failed to fetch")

        app.load_pdf_reader = no_reader
        await app.attach([picked("report.pdf", pdf("Text.")), picked("notes.txt", b"still fine")])
        assert [p.file.name for p in app.attached()] == ["notes.txt"]  # text files do not need it
        refusal = "report.pdf: the PDF reader could not be loaded (Failed to fetch); nothing was attached"
        assert app.attach_note() == refusal
        assert [r.text for r in server.counted] == ["File: notes.txt\n```\nstill fine\n```"]
        await app.attach([picked("again.pdf", pdf("Text."))])
        assert len(loads) == 2  # tried again: the server may be back

    run_async(run())


def test_editing_a_message_brings_back_its_files() -> None:
    async def run() -> None:
        server = CountingServer([TokenEvent(text="ok"), DONE], [TokenEvent(text="ok again"), DONE])
        app = attach_app(server)
        await app.attach([picked("a.txt", b"hello")])
        app.send("Read it.")
        await settle(app)
        assert app.start_edit(0) == "Read it."
        assert [p.file.name for p in app.attached()] == ["a.txt"]
        app.send("Read it again.")
        await settle(app)
        assert server.calls[1][1].conversation.messages[-1].text.startswith("File: a.txt\n")

    run_async(run())


def test_leaving_an_edit_takes_back_the_files_it_brought_and_keeps_the_draft_s() -> None:
    async def run() -> None:
        server = CountingServer([TokenEvent(text="ok"), DONE], [TokenEvent(text="ok too"), DONE])
        app = attach_app(server)
        await app.attach([picked("a.txt", b"hello")])
        app.send("Read it.")
        await settle(app)
        await app.attach([picked("draft.txt", b"draft")])

        def names() -> list[str]:
            return [p.file.name for p in app.attached()]

        leaving = [
            app.end_edit,  # Cancel edit
            app.stop_answer,  # Escape, nothing streaming
            lambda: app.switch_version(1, -1),
            lambda: app.open_chat(app.current.id),
            app.new_chat,
        ]
        for leave in leaving:
            app.start_edit(0)
            assert names() == ["a.txt", "draft.txt"] and app.editing() == 0  # the draft's files are not dropped
            leave()
            assert names() == ["draft.txt"] and app.editing() is None
        app.open_chat(app.library().ordered[0].id)
        app.start_edit(0)
        app.start_edit(0)  # editing it again: its files once
        assert names() == ["a.txt", "draft.txt"]
        app.send("Read both.")
        await settle(app)
        sent = server.calls[1][1].conversation.messages[-1].text
        assert "File: a.txt" in sent and "File: draft.txt" in sent and app.attached() == ()

    run_async(run())


def test_user_presets_are_kept_in_the_store_and_a_deleted_one_falls_back_to_the_settings() -> None:
    async def run() -> None:
        store = FakeStore()
        server = FakeServer([DONE], [DONE])
        app = App(server, store)
        assert app.save_preset("Cold", SamplingParams(temperature=0.25, system="dropped")) == ""
        assert app.save_preset("Empty", SamplingParams(system="only a prompt")) != ""  # sets nothing
        assert "built-in" in app.save_preset("Creative", SamplingParams(top_k=3))
        await settle(app)
        assert App(FakeServer(), store).presets() == {"Cold": SamplingParams(temperature=0.25)}  # a reload finds it
        app.configure_chat(None, "Cold")
        app.send("Hi")
        await settle(app)
        assert server.calls[0][1].params == SamplingParams(temperature=0.25)
        app.delete_preset("Cold")
        assert app.current.preset == ""  # no chat names it any more
        assert app.save_preset("Cold", SamplingParams(temperature=1.5)) == ""  # nor takes up a new one of that name
        app.send("Hi again")
        await settle(app)
        assert server.calls[1][1].params == SamplingParams()
        assert App(FakeServer(), store).presets() == {"Cold": SamplingParams(temperature=1.5)} and store.syncs >= 2

    run_async(run())


def test_the_draft_is_counted_as_the_chat_sends_it_and_a_message_that_cannot_fit_stays() -> None:
    async def run() -> None:
        server = CountingServer([TokenEvent(text="Fine."), DONE], n_ctx=1000)
        app = attach_app(server, max_tokens=100)
        app.choose_model("other.gguf")
        text = "x" * 950  # 950 tokens here: with 10 of overhead and 100 kept for the answer, over 1000
        await app.count_draft(text)
        assert server.counted[-1] == TokensRequest(text=text, model="other.gguf")
        count = app.draft()
        assert count is not None and count.count.tokens == 950 and count.answer == 100
        assert not app.send(text)
        assert app.attach_note() == (
            "Too long to send: this message is 950 tokens; this chat's model takes 1,000,"
            " 100 of them kept for the answer"
        )
        assert server.calls == []
        await app.count_draft("")  # blank: nothing to count, nothing asked
        assert app.draft() is None and len(server.counted) == 1
        await app.count_draft("Short.")
        assert app.send("Short.")
        assert app.draft() is None  # sent: the box is empty again
        await settle(app)
        assert server.calls[0][1].conversation.messages[-1].text == "Short."

    run_async(run())


class HeldCount(CountingServer):
    """Holds the count of "first" until `gate` is set."""

    def __init__(self) -> None:
        super().__init__(n_ctx=1000)
        self.gate = asyncio.Event()

    async def count_tokens(self, request: TokensRequest) -> TokenCount | ErrorEvent:
        if request.text == "first":
            await self.gate.wait()
        return await super().count_tokens(request)


def test_a_count_that_comes_back_late_does_not_overwrite_a_newer_one() -> None:
    async def run() -> None:
        server = HeldCount()
        app = attach_app(server)
        first = app.spawn(app.count_draft("first"))
        await asyncio.sleep(0)  # asked, and held
        await app.count_draft("second, typed on")
        server.gate.set()
        await first
        draft = app.draft()
        assert draft is not None and draft.text == "second, typed on"

    run_async(run())


def test_a_long_paste_is_attached_as_a_text_file_checked_like_any() -> None:
    async def run() -> None:
        server = CountingServer(n_ctx=100_000)
        app = attach_app(server)
        app.attach_text("pasted words\n", typed="About this:")
        await settle(app)
        app.attach_text("more words\n")
        await settle(app)
        assert [p.file for p in app.attached()] == [
            Attachment("pasted.txt", "pasted words\n"),
            Attachment("pasted-2.txt", "more words\n"),
        ]
        app.attach_text("y" * (MAX_TEXT + 1))  # too long for a message even as a file: refused, with its numbers
        await settle(app)
        assert len(app.attached()) == 2 and app.attach_note().startswith("pasted-3.txt is too big: 100,001 characters")

    run_async(run())


def test_sending_waits_for_a_count_only_where_the_text_may_not_fit() -> None:
    async def run() -> None:
        server = CountingServer(n_ctx=1000)
        app = attach_app(server, max_tokens=100)
        assert not app.must_count("x" * 2000)  # no count known yet: the server will say
        await app.count_draft("hello")
        assert not app.must_count("y" * 890)  # 10 + 890 bytes + 100: fits whatever its count
        assert app.must_count("y" * 891)
        assert app.must_count("é" * 446)  # 892 bytes of UTF-8
        await app.count_draft("y" * 891)
        assert not app.must_count("y" * 891)  # counted: app.send decides
        await app.count_draft("y" * (MAX_TEXT + 1))
        assert not app.must_count("y" * (MAX_TEXT + 1))  # refused by its length, with no count

    run_async(run())
