"""The page's components, built on its elements and bound to the app's signals (client.main runs this).

`build` makes the components, each handed the app's actions for what the user does; `bind`
returns the listeners and Effects that keep them showing the app's state (the first render is
the Effects' first run); `enable` lets the user in. Imported by client.main only once the
interpreter is up, so that importing the app's modules is a start-up phase of its own; nothing
here touches the DOM at import.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reaktiv import Effect

from client import boot, browser, draft, markdown, storage
from client.app import App
from client.components.api_key_dialog import ApiKeyDialog
from client.components.attachments import Attachments
from client.components.banner import Banner
from client.components.chat_area import ChatArea
from client.components.chat_settings import ChatSettings
from client.components.context_gauge import ContextGauge
from client.components.import_dialog import ImportDialog
from client.components.menu import Menu
from client.components.model_picker import ModelPicker, options
from client.components.models_panel import ModelsPanel
from client.components.paste_prompt import PastePrompt
from client.components.preset_list import PresetList
from client.components.settings_panel import SettingsPanel
from client.components.sidebar import Sidebar
from client.components.thumbnails import BlobUrls, ImageViewer
from client.components.tools_panel import ToolsPanel
from client.components.type_area import TypeArea
from client.gauge import gauge_of
from client.images import ImageRef
from client.library import EXPORT_CHOICES
from client.state import resumable


@dataclass(frozen=True)
class Components:
    type_area: TypeArea
    chat_area: ChatArea
    sidebar: Sidebar
    panel: SettingsPanel
    preset_list: PresetList
    chat_settings: ChatSettings
    openers: tuple[Any, ...]  # the buttons that open Chat settings (the header's, the drawer's)
    banner: Banner
    key_dialog: ApiKeyDialog
    picker: ModelPicker
    attached: Attachments
    gauge: ContextGauge
    tools: ToolsPanel
    models: ModelsPanel
    importing: ImportDialog
    urls: BlobUrls
    viewer: ImageViewer
    paste: PastePrompt


def build(app: App) -> Components:
    from js import document

    get = document.getElementById
    # Built in this order (each listens on the page as it is made), then handed over as one.
    counter = DraftCounter(app)
    type_area = TypeArea(
        get("type-area"), get("prompt"), get("send"), on_send=app.send, on_stop=app.stop_answer,
        has_files=lambda: bool(app.attached()), lines=(get("prompt-note"), get("draft-count")),
        on_input=counter.typed, count_first=counter.before_send,
    )
    paste = PastePrompt(
        get("prompt"), get("paste-ask"), get("paste-ask-text"), (get("paste-attach"), get("paste-anyway")),
        on_attach=lambda text: app.attach_text(text, str(get("prompt").value)),
    )
    urls = BlobUrls(app.pictures.get)
    viewer = ImageViewer(get("image-view"), get("image-view-title"), get("image-view-img"), get("image-view-close"))
    chat_area = ChatArea(
        get("chat"),
        get("messages"),
        on_edit=lambda index: type_area.fill(app.start_edit(index)),
        on_regenerate=lambda: app.regenerate(app.current.id),
        on_switch=app.switch_version,
        on_call=lambda call_id, choice: app.answer_call(app.current.id, call_id, choice),
        on_continue=lambda: app.continue_answer(app.current.id),
        spawn=app.spawn,
        urls=urls,
        on_view=viewer.open,
        jump=get("jump-down"),
    )
    sidebar = Sidebar(get("sidebar"), get("toggle-chats"), app, on_new=type_area.focus)
    panel = SettingsPanel(get("settings"), get("settings-form"), get("settings-fields"), on_save=app.save_params)
    preset_list = PresetList(get("settings"), panel.read, on_save=app.save_preset, on_delete=app.delete_preset)
    openers = [get("open-chat-settings"), get("open-chat-settings-nav")]
    chat_settings = ChatSettings(get("chat-settings"), get("chat-settings-form"), openers, app.configure_chat)
    banner = Banner(get("banner"), get("banner-text"), get("banner-retry"), lambda: app.spawn(app.check_health()))
    key_dialog = ApiKeyDialog(get("key-dialog"), get("key-form"), get("key-title"), get("api-key"), app.use_key)
    picker = ModelPicker(
        get("model-field"),
        get("model-picker"),
        on_choose=app.choose_model,
        on_open=lambda: app.spawn(app.refresh_models()),
    )
    attached = Attachments(
        get("type-area"), get("attach"), get("attach-file"), get("attached"), get("attach-note"),
        on_pick=lambda files: app.spawn(app.attach(files, str(get("prompt").value))),
        on_remove=app.remove_attachment,
    )
    gauge = ContextGauge(get("context-field"), get("context-gauge"), get("context-text"))
    tools = ToolsPanel(get("tools-dialog"), get("tools-form"), get("open-tools"), on_save=app.choose_tools)
    models = ModelsPanel(get("models-dialog"), get("open-models"), on_action=lambda a, v: models_action(app, a, v))
    importing = ImportDialog(get("import-dialog"), get("import-text"), app.settle_import)
    return Components(
        type_area, chat_area, sidebar, panel, preset_list, chat_settings, tuple(openers), banner, key_dialog, picker,
        attached, gauge, tools, models, importing, urls, viewer, paste,
    )


class DraftCounter:
    """Counts the draft once typing pauses (client.draft.DEBOUNCE_S): a key only restarts a timer,
    and the count goes over the network without holding the box."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._waiting: asyncio.Task[None] | None = None

    def typed(self, text: str) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        self._waiting = self._app.spawn(self._count(text))

    def before_send(self, text: str) -> asyncio.Task[None] | None:
        """Enter on a draft that may not fit and is not counted yet: count it now, without the pause."""
        if not self._app.must_count(text):
            return None
        if self._waiting is not None:
            self._waiting.cancel()
        self._waiting = self._app.spawn(self._app.count_draft(text))
        return self._waiting

    async def _count(self, text: str) -> None:
        if text.strip():
            await self._app.sleep(draft.DEBOUNCE_S)
        await self._app.count_draft(text)


def models_action(app: App, action: str, value: str) -> None:
    """What a button of the Models dialog asks (client.components.models_panel)."""
    catalog = app.catalog
    if action in ("load", "unload", "delete"):
        app.spawn(catalog.act(action, value))
    elif action == "browse":
        app.spawn(catalog.browse(value))
    elif action == "download":
        name, _, vision = value.partition("\n")
        app.spawn(catalog.download(name, vision == "vision"))
    elif action == "cancel":
        app.spawn(catalog.cancel(value))


def bind(app: App, page: Components) -> list[object]:
    """The listeners and Effects that tie `page` to `app`; the caller keeps them (app.keep)."""
    return [*_listeners(app, page), *_effects(app, page, _saver(app))]


def _listeners(app: App, page: Components) -> list[object]:
    from js import document

    get = document.getElementById

    def open_chat_settings() -> None:
        page.sidebar.close()  # on a narrow screen it was opened from the Chats drawer
        page.chat_settings.open(app.current, app.params(), app.presets())

    def open_models() -> None:
        page.sidebar.close()  # on a narrow screen it was opened from the Chats drawer
        page.models.open()
        app.spawn(app.refresh_models())  # files come and go: show what is there now
        app.spawn(app.catalog.watch())

    async def open_tools() -> None:
        await app.refresh_tools()  # servers come and go: show what is there now
        page.tools.open(app.current, app.tool_list())

    def export(kind: str, _chat_id: str) -> None:
        app.spawn(browser.offered(app.export_file(kind)))

    exports = Menu(get("export-menu"), on_pick=export)
    export_button = get("export-chat")

    return [
        exports,
        browser.listen(get("open-settings"), "click", lambda _e: page.panel.open(app.params())),
        *(browser.listen(opener, "click", lambda _e: open_chat_settings()) for opener in page.openers),
        browser.listen(export_button, "click", lambda e: exports.press(e, export_button, EXPORT_CHOICES, "")),
        browser.listen(get("cancel-edit"), "click", lambda _e: app.end_edit()),
        browser.listen(get("open-tools"), "click", lambda _e: app.spawn(open_tools())),
        browser.listen(get("open-models"), "click", lambda _e: open_models()),
    ]


def _saver(app: App) -> storage.Saver:
    """What writes the chats to the browser's store, marking the page while it does."""
    from js import document

    writes_begun = 0

    def show_saving(saving: bool) -> None:
        # body[data-saving] while the browser's store has writes in flight (a reload then may lose them);
        # data-writes counts the writes begun, so a test can wait for one begun after what it saw
        nonlocal writes_begun
        if saving:
            writes_begun += 1
            document.body.dataset.writes = str(writes_begun)
            document.body.dataset.saving = "true"
        else:
            document.body.removeAttribute("data-saving")

    return storage.Saver(app.store, app.records, on_saving=show_saving)


def _effects(app: App, page: Components, saver: storage.Saver) -> list[Effect]:
    from js import document

    get = document.getElementById

    def render() -> None:
        chat = app.current
        page.chat_area.render(chat, app.rich(), app.pictures.state)
        get("intro").hidden = bool(chat.turns)
        get("export-chat").disabled = not chat.turns
        page.sidebar.render(app.library())

    was_editing = False

    def show_editing() -> None:
        nonlocal was_editing
        editing = app.editing() is not None
        get("editing").hidden = not editing
        if was_editing and not editing:
            page.type_area.clear()  # left unsent (Escape, Cancel edit, another chat): no duplicate on Enter
        was_editing = editing

    def show_count() -> None:
        shown = gauge_of(app.current, app.models())
        attached = sum(p.tokens for p in app.attached())
        page.type_area.show_count(draft.count_line(app.draft(), shown.used if shown else 0, attached))

    def persist() -> None:
        chats = app.library().chats
        saver.changed(streaming=any(c.busy for c in chats), answers=frozenset(filter(None, map(resumable, chats))))

    return [
        Effect(render),
        Effect(lambda: page.type_area.set_busy(app.current.busy)),
        Effect(show_editing),
        Effect(show_count),
        Effect(persist),
        Effect(lambda: page.banner.render(app.banner())),
        Effect(lambda: page.key_dialog.render(app.key_request())),
        Effect(lambda: page.importing.render(app.import_offer())),
        Effect(lambda: setattr(get("import-note"), "textContent", app.import_note())),
        Effect(lambda: page.panel.show_server(app.health())),
        Effect(app.show_images),
        Effect(lambda: page.attached.render(chips(app, page.urls), notes(app))),
        Effect(lambda: page.preset_list.render(app.presets())),
        Effect(lambda: page.chat_settings.mark(app.current)),
        Effect(lambda: page.tools.mark(app.current, app.tool_list())),
        Effect(lambda: page.models.show_models(app.models())),
        Effect(lambda: page.models.show_note(app.catalog.note())),
        Effect(lambda: page.models.show_hub(app.catalog.hub(), downloads_on(app))),
        Effect(lambda: page.models.show_downloads(app.catalog.downloads())),
        Effect(lambda: page.gauge.render(gauge_of(app.current, app.models()))),
        Effect(lambda: page.picker.render(*options(app.models(), app.health(), app.chosen_model()))),
    ]


def chips(app: App, urls: BlobUrls) -> tuple[tuple[str, str], ...]:
    """The draft's chips: each file's name, and an image's thumbnail."""
    return tuple((p.file.name, urls.url(p.file.digest) if isinstance(p.file, ImageRef) else "") for p in app.attached())


def notes(app: App) -> str:
    """The lines under the draft: why files were refused, and an image the browser would not keep."""
    return "\n".join(filter(None, (app.attach_note(), app.storage_note())))


def downloads_on(app: App) -> bool:
    """The server takes downloads (it says so once asked; a server that says nothing: no)."""
    listed = app.catalog.downloads()
    return listed is not None and listed.enabled


def enable(page: Components) -> None:
    """Let the user in: the buttons that wait for Python, and the components'."""
    from js import document

    get = document.getElementById
    for ready in (get("open-settings"), get("open-tools"), get("open-models"), *page.openers):
        ready.disabled = False
    page.sidebar.enable()
    page.type_area.enable()
    page.attached.enable()
    document.body.dataset.ready = "true"  # for people and tests: Python is up


async def enable_markdown(app: App, typing: boot.Typing) -> None:
    """Load the Markdown renderer a step at a time, each in a pause in typing."""
    from js import document

    if await markdown.load(typing.pause):
        app.rich.set(True)
        document.body.dataset.markdown = "ready"  # for tests: answers now render as Markdown
