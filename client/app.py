"""The app's state, and everything the user can do to it, with no DOM.

All chats live in one reaktiv Signal, `library`; settings in another; what the banner says and
whether an API key is wanted are signals too. Components only render these (through Effects)
or change them (through the methods here, which apply the pure transitions of client.state and
client.library). The answers on their way are followed by `streams` (client.streams), each
into *its* chat by id, so switching chats mid-answer is harmless. Saving to IndexedDB is an
Effect too (client.storage), not a second source of truth.

The browser comes in through two objects only, the RPC `Client` and the `Store`; tests hand in
fakes, so this module runs on CPython.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from reaktiv import Signal

from client import attachments, draft, image_codec, images, pdf, presets, reconnect, sandbox, settings, tools
from client import library as lib
from client.attachments import Attachment, Pending, Picked, Refused
from client.catalog import Catalog
from client.errors import NO_CHATS, SERVER_DOWN, TOO_LONG
from client.images import ImageRef, Prepared
from client.pictures import MemoryStore, Picture, Pictures, PictureStore, StorageFull, referenced
from client.rpc import Client
from client.state import (
    DENIED,
    Chat,
    allow_tool,
    choose_model,
    choose_tools,
    configure,
    continue_answer,
    edit,
    images_in,
    next_round,
    regenerate,
    request_for,
    run_call,
    settle_call,
    stop,
    submit,
    switch_version,
    title_of,
    waiting_calls,
)
from client.storage import Store
from client.streams import AnswerStreams, KeyRequest
from wire.events import ErrorEvent
from wire.types import (
    MAX_IMAGES,
    MAX_TEXT,
    ConverseRequest,
    Health,
    ModelList,
    SamplingParams,
    TokensRequest,
    ToolCallResult,
    ToolInfo,
    ToolList,
)

T = TypeVar("T")

API_KEY = "api_key"  # the store's key for the API key
LAST_MODEL = "last_model"  # the store's key for the model last picked or sent with: new chats start on it


@dataclass(frozen=True)
class ImportOffer:
    """An import that holds chats the library has already: the user keeps both or replaces them."""

    imported: lib.Library
    titles: tuple[str, ...]  # of the chats already here


@dataclass(frozen=True)
class ExportFile:
    text: str
    filename: str
    mime: str


class App:
    def __init__(self, client: Client, store: Store, pictures: PictureStore | None = None) -> None:
        """`pictures`: where the chats' images are kept (the page's IndexedDB); none: in memory only."""
        self.client = client
        self.store = store
        self.pictures = Pictures(pictures if pictures is not None else MemoryStore())
        client.use_key(str(store.get(API_KEY) or ""))
        self.library: Signal[lib.Library] = Signal(lib.from_records(dict(store)))
        self.params: Signal[SamplingParams] = Signal(settings.load(store.get(settings.SETTINGS_KEY)))
        self.presets: Signal[dict[str, SamplingParams]] = Signal(presets.load(store.get(presets.PRESETS_KEY)))
        self.editing: Signal[int | None] = Signal(None)  # index of the user message being edited
        self.rich: Signal[bool] = Signal(False)  # Markdown renderer loaded
        self.banner: Signal[str | None] = Signal(None)  # what the page's alert says, if anything
        self.key_request: Signal[KeyRequest | None] = Signal(None)
        self.health: Signal[Health | None] = Signal(None)  # what the server said about itself last
        # The models the server offers (GET /api/models); None: it does not say (an older server, or unreachable).
        self.models: Signal[ModelList | None] = Signal(None)
        self.last_model: Signal[str] = Signal(str(store.get(LAST_MODEL) or ""))
        self.attached: Signal[tuple[Pending, ...]] = Signal(())  # files for the message being written
        self.attach_note: Signal[str] = Signal("")  # why the last files picked were refused, if any were
        self.draft: Signal[draft.DraftCount | None] = Signal(None)  # the server's count of the message being written
        self.import_note: Signal[str] = Signal("")  # why the last file picked to import was not imported
        self.import_offer: Signal[ImportOffer | None] = Signal(None)  # an import waiting for Keep both / Replace
        self.tool_list: Signal[ToolList | None] = Signal(None)  # what GET /api/tools said last
        self.run_python: tools.RunPython = sandbox.tool  # the built-in python tool (tests hand in their own)
        self.load_pdf_reader: Callable[[], Awaitable[None]] = pdf.load  # tests hand in one that fails
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests hand in one that only counts
        self._reconnecting: asyncio.Task[None] | None = None  # looking for the server again, with backoff
        self.storage_note: Signal[str] = Signal("")  # an image the browser's storage would not keep
        self.prepare_image: Callable[[str, bytes], Awaitable[Prepared]] = image_codec.prepare  # the browser's canvas
        self._calls: dict[str, set[asyncio.Task[None]]] = {}  # chat id -> its tool calls running
        # Tasks, effects and JS proxies must stay referenced: asyncio, reaktiv and JS hold them weakly.
        self.tasks: set[asyncio.Task[Any]] = set()
        self._kept: list[object] = []
        self.streams = AnswerStreams(
            client,
            self.library,
            self.spawn,
            request=self._request_for,
            prepare=self._load_images,
            default_model=self.default_model,
            on_lost=lambda: self.spawn(self.check_health()),
            key_request=self.key_request,
            on_calling=self.calls_waiting,
        )
        self.catalog = Catalog(client, self.spawn, self.refresh_models)  # the Models dialog's
        self._edit_files: tuple[Pending, ...] = ()  # the files the message being edited brought along
        self._attaching = asyncio.Lock()
        self._counting = ""  # the draft text whose count was asked last
        self._counted = ""  # the draft text whose count came back last (or could not be had)
        self._known: draft.DraftCount | None = None  # the last count that came back: the model's limits

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def keep(self, things: Iterable[object]) -> None:
        """Hold effects and event-listener proxies for the page's lifetime."""
        self._kept.extend(things)

    @property
    def current(self) -> Chat:
        return self.library().current

    def change(self, chat_id: str, transition: Callable[[Chat], Chat]) -> None:
        self.library.set(lib.update(self.library(), chat_id, transition))

    # Answers (each one's stream is followed by client.streams).

    def _request_for(self, chat: Chat) -> ConverseRequest:
        offered = tools.specs(tools.offered(self.tool_list(), chat.tools))
        params = presets.params_for(chat, self.params(), self.presets())
        return request_for(chat, params, offered, self.pictures.url)

    async def _load_images(self, chat: Chat) -> None:
        """The chat's images in memory (from the page's store), for its request to carry them."""
        await self.pictures.load(image for t in chat.turns for image in t.images)

    def start_answer(self, chat_id: str) -> None:
        chat = lib.find(self.library(), chat_id)
        if chat is not None:
            self.remember_model(chat.model)  # the last model used: where a new chat starts
        self.streams.start(chat_id)

    def send(self, text: str) -> bool:
        """Send `text` in the open chat (a new one if none), or replace the message being edited;
        False if it was not sent: blank, an answer still on its way, too long with its files, or
        with images for a model that takes none (`attach_note` says so)."""
        files, pictures = attachments.texts(self.attached()), attachments.images(self.attached())
        if len(attachments.compose(text, files)) > MAX_TEXT:  # the server would refuse it: say so here
            self.attach_note.set(attachments.too_long(text, files) if files else TOO_LONG)
            return False
        if why := draft.refusal(self.draft(), text, sum(p.tokens for p in self.attached())):
            self.attach_note.set(why)
            return False
        shown = self.current.turns if self.library().open_id else ()
        sent = pictures + tuple(i for t in shown[: self.editing()] for i in t.images)
        if sent and self.takes_images() is False:
            self.attach_note.set(images.no_vision(sent[0].name, self.model_name()))
            return False
        if not self.library().open_id:
            self.library.set(lib.new_chat(self.library(), uuid.uuid4().hex, self.start_model()))
        chat_id = self.library().open_id
        index = self.editing()
        before = self.current
        now = time.time()
        if index is None:
            after = submit(before, text, now, files, pictures)
        else:
            after = edit(before, index, text, now, files, pictures)
        if after is before:  # blank, or an answer is still streaming
            return False
        self.editing.set(None)
        self._edit_files = ()
        self.attached.set(())
        self.attach_note.set("")
        self.draft.set(None)
        self._counting = ""  # a count still on its way is of the text just sent
        self.change(chat_id, lambda _c: after)
        self.start_answer(chat_id)
        return True

    def stop_answer(self) -> None:
        """Stop the open chat's answer (client.streams.AnswerStreams.stop), or its tool calls; with
        neither, leave editing."""
        chat_id = self.library().open_id
        if self.streams.stop(chat_id):
            return
        if self.current.busy:  # its answer waits on tool calls: they stop, and it ends here
            for task in self._calls.pop(chat_id, set()):
                task.cancel()
            self.change(chat_id, stop)
            return
        self.end_edit()

    # Tool calls (client.tools): each asks the user first, unless its tool is allowed in the chat.

    def calls_waiting(self, chat_id: str) -> None:
        """The chat's answer has calls waiting for the user's word: those of tools allowed in the chat run now."""
        chat = lib.find(self.library(), chat_id)
        if chat is None:
            return
        offered = tools.offered(self.tool_list(), chat.tools)
        for call in waiting_calls(chat):
            tool = offered.get(call.name)
            if tool is not None and tools.key(tool) in chat.allowed:
                self.answer_call(chat_id, call.id, "allow")

    def answer_call(self, chat_id: str, call_id: str, choice: str) -> None:
        """The user's word on a call: "allow", "always" (this tool, in this chat) or "deny"."""
        chat = lib.find(self.library(), chat_id)
        call = next((c for c in waiting_calls(chat) if c.id == call_id), None) if chat is not None else None
        if chat is None or call is None:
            return
        tool = tools.offered(self.tool_list(), chat.tools).get(call.name)
        if choice == "always" and tool is not None:
            self.change(chat_id, partial(allow_tool, key=tools.key(tool)))
        if choice == "deny":
            self._settle(chat_id, call_id, ToolCallResult(DENIED, True))
            return
        self.change(chat_id, partial(run_call, call_id=call_id))
        task = self.spawn(self._run_call(chat_id, call_id, tool, call.name, call.arguments))
        self._calls.setdefault(chat_id, set()).add(task)
        task.add_done_callback(self._calls.get(chat_id, set()).discard)

    async def _run_call(self, chat_id: str, call_id: str, tool: ToolInfo | None, name: str, text: str) -> None:
        chat = lib.find(self.library(), chat_id)
        files = sandbox.chat_files(chat.turns) if chat is not None else ()
        self._settle(chat_id, call_id, await tools.run(self.client, self.run_python, tool, name, text, files))

    def _settle(self, chat_id: str, call_id: str, result: ToolCallResult) -> None:
        """The call has its result; once all of the answer's have, the answer goes on from them."""
        self.change(chat_id, partial(settle_call, call_id=call_id, result=result.text, is_error=result.is_error))
        chat = lib.find(self.library(), chat_id)
        if chat is not None and next_round(chat) is not chat:
            self.change(chat_id, next_round)
            self.streams.start(chat_id)

    def choose_tools(self, keys: tuple[str, ...]) -> None:
        """The tools the open chat (a new one if none) offers the model, from its next answer on."""
        if not self.library().open_id:
            self.library.set(lib.new_chat(self.library(), uuid.uuid4().hex, self.start_model()))
        self.change(self.library().open_id, partial(choose_tools, keys=keys))

    async def refresh_tools(self) -> None:
        """Ask the server which tools it offers now; then run the waiting calls that need no word
        (a page reloaded during a round of calls)."""
        listing = await self.client.tools()
        if listing is not None or self.tool_list() is None:  # a failed refresh keeps the list it had
            self.tool_list.set(listing)
        for chat in self.library().chats:
            self.calls_waiting(chat.id)

    def regenerate(self, chat_id: str) -> None:
        self._ask_again(chat_id, regenerate)

    def continue_answer(self, chat_id: str) -> None:
        """The model goes on with the chat's last answer, which stopped short (client.state.continue_answer)."""
        self._ask_again(chat_id, continue_answer)

    def _ask_again(self, chat_id: str, transition: Callable[[Chat, float], Chat]) -> None:
        """Apply `transition` (now) to the chat, and start the answer it asks for, if it asks one."""
        chat = lib.find(self.library(), chat_id)
        if chat is None:
            return
        after = transition(chat, time.time())
        if after is not chat:
            self.change(chat_id, lambda _c: after)
            self.start_answer(chat_id)

    def switch_version(self, index: int, step: int) -> None:
        """Show the previous (-1) or next (1) version at turn `index` of the open chat."""
        self.end_edit()
        self.change(self.library().open_id, partial(switch_version, index=index, step=step))

    def start_edit(self, index: int) -> str:
        """Edit user message `index` of the open chat; returns its text for the type area.

        Its files join those already attached (the user sees them all, and sends what is left);
        leaving the edit takes back only the files it brought (`end_edit`)."""
        self.end_edit()
        self.editing.set(index)
        turn = self.current.turns[index]
        self._edit_files = tuple(Pending(f) for f in turn.files) + tuple(Pending(i) for i in turn.images)
        self.attached.set(self._edit_files + self.attached())
        return turn.text

    def end_edit(self) -> None:
        """Leave the edit unsent: no message is being edited, and the files it brought go."""
        brought = {id(p) for p in self._edit_files}
        self._edit_files = ()
        self.editing.set(None)
        self.attached.set(tuple(p for p in self.attached() if id(p) not in brought))

    # Attachments.

    async def attach(self, picked: list[Picked], typed: str = "") -> None:
        """Attach the files the user chose or dropped, one after another (each counted with those
        before it and the text `typed` so far); `attach_note` says why any was refused."""
        async with self._attaching:  # a second drop waits: each file is counted with those before it
            self.attach_note.set("")
            self.storage_note.set("")
            refused = []
            for one in picked:
                try:
                    self.attached.set(self.attached() + (await self._checked(one, typed),))
                except Refused as exc:
                    refused.append(str(exc))
            self.attach_note.set("\n".join(refused))  # a line each: the note keeps line breaks

    def attach_text(self, text: str, typed: str = "") -> None:
        """Attach pasted `text` as a file, checked and counted as any file is."""
        name = draft.paste_name({p.file.name for p in self.attached()})
        data = text.encode()

        async def read() -> bytes:
            return data

        self.spawn(self.attach([Picked(name, len(data), read, "text/plain")], typed))

    async def count_draft(self, text: str) -> None:
        """Count the message being written as the open chat would send it (its model, its system
        prompt and answer budget), for the live count by the box; a draft that is blank, over the
        message's bound, or not countable now, has none."""
        self._counting = text
        if not text.strip() or len(text) > MAX_TEXT:  # nothing to count, or refused by its length at once
            self._counted = text
            self.draft.set(None)
            return
        params = presets.params_for(self.current, self.params(), self.presets())
        request = TokensRequest(text=text, model=self.chosen_model() or None, system=params.system)
        count = await self.client.count_tokens(request)
        if self._counting != text:  # typed on, or sent, meanwhile: a newer count is due
            return
        self._counted = text
        if isinstance(count, ErrorEvent):
            self.draft.set(None)
            return
        self._known = draft.DraftCount(text, count, params.max_tokens or count.max_tokens)
        self.draft.set(self._known)

    def must_count(self, text: str) -> bool:
        """Whether sending `text` waits for its count: it could be too long for the model, and
        no count of it came back yet (client.draft.may_not_fit)."""
        attached = sum(p.tokens for p in self.attached())
        return text != self._counted and draft.may_not_fit(self._known, text, attached)

    async def _checked(self, picked: Picked, typed: str) -> Pending:
        """The file, read and counted; Refused if it is not text (nor a PDF with text, nor an image
        the chat's model takes) or cannot fit the message or the context."""
        named_image = images.named_image(picked.name, picked.type)
        if named_image:
            self._check_takes_images(attachments.clean_name(picked.name))
            if why := images.too_big(picked.name, picked.size):
                raise Refused(why)
        elif pdf.named_pdf(picked.name):
            pdf.check_size(picked.name, picked.size)
        else:
            attachments.check_size(picked.name, picked.size)
        try:
            data = await picked.read()
        except Exception as exc:  # a JsException: the file went away, or may not be read
            raise Refused(f"{picked.name} could not be read: {exc}") from exc
        if named_image or images.sniff(data):
            return await self._checked_image(attachments.clean_name(picked.name), data)
        if pdf.is_pdf(picked.name, data):
            file = await self._read_pdf(picked.name, data)
        else:
            file = attachments.read(picked.name, data)
        before = self.attached()
        attachments.check_fits_message(file, attachments.texts(before), typed)
        # Counted as the open chat will send it: its system prompt, its preset's answer budget.
        params = presets.params_for(self.current, self.params(), self.presets())
        request = TokensRequest(text=attachments.fenced(file), model=self.chosen_model() or None, system=params.system)
        count = await self.client.count_tokens(request)
        if isinstance(count, ErrorEvent):
            raise Refused(attachments.not_counted(file.name, count.message))
        answer = params.max_tokens or count.max_tokens
        attachments.check_fits_context(file.name, count, sum(p.tokens for p in before), answer)
        return Pending(file, count.tokens)

    def takes_images(self) -> bool | None:
        """Whether the chat's model takes images, as the server says; None while it does not say."""
        models, model = self.models(), self.chosen_model()
        if models is not None:
            name = model or models.default
            return next((m.vision for m in models.models if m.name == name), None)
        health = self.health()
        return health.vision if health is not None and not model else None

    def model_name(self) -> str:
        return self.chosen_model() or self.default_model()

    def _check_takes_images(self, name: str) -> None:
        if self.takes_images() is False:
            raise Refused(images.no_vision(name, self.model_name()))

    async def _checked_image(self, name: str, data: bytes) -> Pending:
        """The image as it is sent (scaled down, a GIF's first frame), counted by the server and
        kept in the page's store; Refused if the model takes none, it cannot be read, or its tokens
        cannot fit the context. A store that is full says so (`attach_note`), and the image is
        attached all the same: it is sent, only not kept for a later visit."""
        self._check_takes_images(name)
        before = self.attached()
        if len(attachments.images(before)) >= MAX_IMAGES:
            raise Refused(images.too_many(name, MAX_IMAGES))
        kind = images.sniff(data)
        if not kind:
            raise Refused(images.unreadable(name, "not a PNG, JPEG, WebP or GIF"))
        try:
            ready = await self.prepare_image(kind, data)
        except Exception as exc:  # the browser could not decode it (a JsException): damaged, or not what it says
            raise Refused(images.unreadable(name, " ".join(str(exc).split()) or type(exc).__name__)) from exc
        params = presets.params_for(self.current, self.params(), self.presets())
        url = images.data_url(ready.type, ready.data)
        request = TokensRequest(text="", model=self.chosen_model() or None, system=params.system, images=[url])
        count = await self.client.count_tokens(request)
        if isinstance(count, ErrorEvent):
            if "takes no images" in count.message:  # the list of models was out of date
                raise Refused(images.no_vision(name, self.model_name()))
            raise Refused(attachments.not_counted(name, count.message))
        answer = params.max_tokens or count.max_tokens
        attachments.check_fits_context(name, count, sum(p.tokens for p in before), answer)
        picture = Picture(ready.type, ready.data)
        try:
            digest = await self.pictures.keep(picture)
        except StorageFull:
            digest = self.pictures.hold(picture)
            self.storage_note.set(images.storage_full(name))
        image = ImageRef(name, digest, ready.type, ready.width, ready.height, len(ready.data))
        return Pending(image, count.tokens)

    async def _read_pdf(self, name: str, data: bytes) -> Attachment:
        """The PDF's text; its reader is loaded the first time one is attached (Refused, saying so, if it cannot be)."""
        try:
            await self.load_pdf_reader()
        except Exception as exc:  # the wheel did not come, or does not import: PDFs cannot be read
            raise Refused(pdf.unavailable(attachments.clean_name(name), exc)) from exc
        return await pdf.read(name, data)

    def show_images(self) -> None:
        """Bring the open chat's images from the page's store, those not asked for yet."""
        wanted = [i for t in self.current.turns for i in t.images if not self.pictures.state(i.digest)]
        if wanted:
            self.spawn(self.pictures.load(wanted))

    def remove_attachment(self, index: int) -> None:
        files = self.attached()
        self.attached.set(files[:index] + files[index + 1 :])

    # Chats.

    def new_chat(self) -> None:
        self.end_edit()
        self.library.set(lib.new_chat(self.library(), uuid.uuid4().hex, self.start_model()))

    def open_chat(self, chat_id: str) -> None:
        self.end_edit()
        self.library.set(lib.select(self.library(), chat_id))

    def rename_chat(self, chat_id: str, title: str) -> None:
        self.library.set(lib.rename(self.library(), chat_id, title))

    def delete_chat(self, chat_id: str) -> None:
        self.library.set(lib.delete(self.library(), chat_id))

    def pin_chat(self, chat_id: str, pinned: bool) -> None:
        self.library.set(lib.set_pinned(self.library(), chat_id, pinned))

    def records(self) -> dict[str, str]:
        """The library as the store keeps it (client.storage.Saver writes what changed)."""
        return lib.records(self.library())

    async def export_file(self, kind: str, chat_id: str = "") -> ExportFile | None:
        """A chat (`chat_id`, else the open one) as a Markdown ("md") or JSON file (with the bytes of
        its images), or every chat as one JSON file ("all"); None when there is nothing to export."""
        if kind == "all":
            if not self.library().ordered:
                return None
            await self.pictures.load(i for c in self.library().ordered for i in images_in(c))
            text = lib.export_all_json(self.library(), self.pictures.get)
            return ExportFile(text, "snake-llama-chats.json", "application/json")
        chat = lib.find(self.library(), chat_id) if chat_id else self.current
        if chat is None or not chat.turns:
            return None
        if kind == "md":
            return ExportFile(lib.export_markdown(chat), lib.filename_for(chat, "md"), "text/markdown")
        await self.pictures.load(images_in(chat))
        text = lib.export_json(chat, pinned=chat.id in self.library().pinned, pictures=self.pictures.get)
        return ExportFile(text, lib.filename_for(chat, "json"), "application/json")

    async def import_chat(self, text: str) -> bool:
        """Add the exported chats (one, or all of an all-chats export; JSON or Markdown) with their
        images, and open the first; False, with `import_note` saying why in a sentence, if the file
        is not one. Chats that are here already wait for the user's word (`import_offer`,
        `settle_import`). Images the browser's storage will not keep are shown for now, and
        `storage_note` says so."""
        self.import_note.set("")
        try:
            imported = lib.import_many(text, lambda: uuid.uuid4().hex, time.time())
        except ValueError as exc:
            self.import_note.set(str(exc))
            return False
        if not imported.chats:
            self.import_note.set(NO_CHATS)
            return False
        for picture in lib.pictures_in(text).values():
            try:
                await self.pictures.keep(picture)
            except StorageFull:
                self.storage_note.set(images.STORAGE_FULL)
        same = lib.duplicates(self.library(), imported)
        if same:
            titles = tuple(title_of(c) for c in self.library().chats if c.id in same.values())
            self.import_offer.set(ImportOffer(imported, titles))
            return True
        self.library.set(lib.add(self.library(), imported, lambda: uuid.uuid4().hex))
        return True

    def settle_import(self, choice: str) -> None:
        """The user's word on an import of chats already here: "keep" both, "replace" them, or "cancel"."""
        offer = self.import_offer()
        self.import_offer.set(None)
        if offer is None or choice not in ("keep", "replace"):
            return
        library = self.library()
        busy = {c.id for c in library.chats if c.busy}
        replacing = choice == "replace" and not busy & set(lib.duplicates(library, offer.imported).values())
        self.library.set(lib.add(library, offer.imported, lambda: uuid.uuid4().hex, replacing=replacing))

    async def tidy_images(self) -> None:
        """Free the stored images no saved chat names any more (removed unsent, or their chat deleted)."""
        named = referenced({key: self.store.get(key) for key in self.store})
        await self.pictures.collect(named | {i.digest for c in self.library().chats for i in images_in(c)})

    # Models.

    def default_model(self) -> str:
        """The model a chat that names none gets: what the server says, or "" if it does not."""
        models, health = self.models(), self.health()
        if models is not None:
            return models.default
        return (health.model or "") if health is not None else ""

    def chosen_model(self) -> str:
        """The model the open chat asks (with no chat open: the one a new chat would); "" = the default."""
        return self.current.model if self.library().open_id else self.start_model()

    def start_model(self) -> str:
        """What a new chat starts on: the last model used, unless the server no longer offers it."""
        last, models = self.last_model(), self.models()
        if models is not None and not any(m.name == last and m.usable for m in models.models):
            return ""
        return last

    def choose_model(self, model: str) -> None:
        """The picker changed: the open chat (a new one if none) asks `model` from now on."""
        if not self.library().open_id:
            self.library.set(lib.new_chat(self.library(), uuid.uuid4().hex, model))
        self.change(self.library().open_id, partial(choose_model, model=model))
        self.remember_model(model)

    def remember_model(self, model: str) -> None:
        if model != self.last_model():
            self.last_model.set(model)
            self.store[LAST_MODEL] = model
            self.spawn(self.store.sync())

    async def refresh_models(self) -> None:
        """Ask the server which models it offers now (files come and go without a restart)."""
        models = await self.client.models()
        if models is not None or self.models() is None:  # a failed refresh keeps the list it had
            self.models.set(models)

    # Settings, API key, server health.

    def save_params(self, value: SamplingParams) -> None:
        self.params.set(value)
        self.store[settings.SETTINGS_KEY] = settings.dump(value)
        self.spawn(self.store.sync())

    def save_preset(self, name: str, params: SamplingParams) -> str:
        """Keep the sampling values of `params` as the user's preset `name`; returns why not, or ""."""
        error = presets.name_error(name)
        if not error and presets.sampling_only(params) == SamplingParams():
            error = "Set at least one value above to save a preset"
        if error:
            return error
        self._keep_presets(presets.saved(self.presets(), name, params))
        return ""

    def delete_preset(self, name: str) -> None:
        """Forget the user's preset `name`; chats that named it go back to the global settings."""
        self._keep_presets(presets.deleted(self.presets(), name))
        self.library.set(lib.forget_preset(self.library(), name))

    def _keep_presets(self, value: dict[str, SamplingParams]) -> None:
        self.presets.set(value)
        self.store[presets.PRESETS_KEY] = presets.dump(value)
        self.spawn(self.store.sync())

    def configure_chat(self, system: str | None, preset: str) -> None:
        """The open chat's own system prompt and sampling preset (see client.state.configure);
        a new chat if none is open."""
        if not self.library().open_id:
            self.library.set(lib.new_chat(self.library(), uuid.uuid4().hex, self.start_model()))
        self.change(self.library().open_id, partial(configure, system=system, preset=preset))

    def use_key(self, key: str) -> None:
        """Keep the key the user gave, and retry the answer that asked for it."""
        key = key.strip()
        if not key:
            return
        self.client.use_key(key)
        self.store[API_KEY] = key
        self.spawn(self.store.sync())
        request = self.key_request()
        self.key_request.set(None)
        self.spawn(self.refresh_models())  # a server with a key hides its models without one
        if request is not None:
            self.regenerate(request.chat_id)

    async def check_health(self) -> bool:
        """Ask the server how it is; True if it answered. While it does not, the banner says so
        and the page keeps looking on its own (`reconnect.backoff`); Retry looks at once."""
        health = await self.client.health()
        self.health.set(health)
        if health is None:
            self.banner.set(SERVER_DOWN)
            if self._reconnecting is None or self._reconnecting.done():
                self._reconnecting = self.spawn(self._reconnect())
            return False
        self.banner.set(None)
        await self.refresh_models()
        await self.refresh_tools()
        return True

    async def _reconnect(self) -> None:
        for delay in reconnect.backoff():
            await self.sleep(delay)
            # Retry may have found it meanwhile; a look that fails here starts no second loop (this one runs)
            if self.health() is not None or await self.check_health():
                return
