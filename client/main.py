"""Entry point of the browser app (PyScript runs this file on the page's main thread).

Wiring only: open the store, build the app state (client.app) and the components
(client.components), bind them to the state with Effects, and tell the page Python is ready.
Start-up is marked in phases (client.boot): the first lines mark the interpreter ready and take
in a message typed before Python ran; the app's modules are imported after that, inside
`start`, so that their cost is a phase of its own and the status line names it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from client import boot

if TYPE_CHECKING:
    from client.app import App


async def start(typed_ahead: str | None) -> App:
    """Load what was saved, bind the page to the signals, and tell it that Python is ready.

    `typed_ahead`: a message sent before Python ran (client.boot.capture); it goes out first.
    """
    from js import document
    from reaktiv import Effect

    from client import browser, devreload, markdown, storage
    from client.app import App
    from client.components.api_key_dialog import ApiKeyDialog
    from client.components.attachments import Attachments
    from client.components.banner import Banner
    from client.components.chat_area import ChatArea
    from client.components.chat_settings import ChatSettings
    from client.components.context_gauge import ContextGauge
    from client.components.model_picker import ModelPicker, options
    from client.components.preset_list import PresetList
    from client.components.settings_panel import SettingsPanel
    from client.components.sidebar import Sidebar
    from client.components.type_area import TypeArea
    from client.gauge import gauge_of
    from client.rpc import Client
    from client.state import resumable

    boot.reach(boot.MODULES_IMPORTED)
    app = App(Client(), await storage.open_store())
    get = document.getElementById
    type_area = TypeArea(
        get("type-area"), get("prompt"), get("send"), on_send=app.send, on_stop=app.stop_answer,
        has_files=lambda: bool(app.attached()),
    )
    # The box is the app's now: what was typed ahead goes out before the first render shows the chat.
    sent_since = boot.take_over(captured=typed_ahead is not None)
    typed = typed_ahead if typed_ahead is not None else sent_since
    if typed is not None and not app.send(typed):
        type_area.fill(typed)  # the open chat's answer is being resumed: the text waits in the box
    chat_area = ChatArea(
        get("chat"),
        get("messages"),
        on_edit=lambda index: type_area.fill(app.start_edit(index)),
        on_regenerate=lambda: app.regenerate(app.current.id),
        on_switch=app.switch_version,
        spawn=app.spawn,
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

    saver = storage.Saver(app.store, app.records, on_saving=show_saving)

    def render() -> None:
        chat = app.current
        chat_area.render(chat, app.rich())
        get("intro").hidden = bool(chat.turns)
        get("export-md").disabled = get("export-json").disabled = not chat.turns
        sidebar.render(app.library())

    def show_editing() -> None:
        get("editing").hidden = app.editing() is None

    def persist() -> None:
        chats = app.library().chats
        saver.changed(streaming=any(c.busy for c in chats), answers=frozenset(filter(None, map(resumable, chats))))

    def open_chat_settings() -> None:
        sidebar.close()  # on a narrow screen it was opened from the Chats drawer
        chat_settings.open(app.current, app.params(), app.presets())

    def export(kind: str) -> None:
        file = app.export_file(kind)
        if file is not None:
            browser.download(file.text, file.filename, file.mime)

    async def enable_markdown() -> None:
        if await markdown.load():
            app.rich.set(True)
            document.body.dataset.markdown = "ready"  # for tests: answers now render as Markdown

    app.keep(
        [
            browser.listen(get("open-settings"), "click", lambda _e: panel.open(app.params())),
            *(browser.listen(opener, "click", lambda _e: open_chat_settings()) for opener in openers),
            browser.listen(get("export-md"), "click", lambda _e: export("md")),
            browser.listen(get("export-json"), "click", lambda _e: export("json")),
            browser.listen(get("cancel-edit"), "click", lambda _e: app.end_edit()),
            Effect(render),
            Effect(lambda: type_area.set_busy(app.current.busy)),
            Effect(show_editing),
            Effect(persist),
            Effect(lambda: banner.render(app.banner())),
            Effect(lambda: key_dialog.render(app.key_request())),
            Effect(lambda: panel.show_server(app.health())),
            Effect(lambda: attached.render(tuple(p.file.name for p in app.attached()), app.attach_note())),
            Effect(lambda: preset_list.render(app.presets())),
            Effect(lambda: chat_settings.mark(app.current)),
            Effect(lambda: gauge.render(gauge_of(app.current, app.models()))),
            Effect(lambda: picker.render(*options(app.models(), app.health(), app.chosen_model()))),
        ]
    )
    boot.reach(boot.FIRST_RENDER)
    for ready in (get("open-settings"), *openers):
        ready.disabled = False
    sidebar.enable()
    type_area.enable()
    attached.enable()
    document.body.dataset.ready = "true"  # for people and tests: Python is up
    boot.reach(boot.READY)
    app.streams.resume_all()  # answers that were on their way when the page went away
    app.spawn(app.check_health())
    app.spawn(enable_markdown())
    devreload.start(app.spawn)
    return app


if sys.platform == "emscripten":
    boot.reach(boot.INTERPRETER_READY)
    boot.reach(boot.PACKAGES_INSTALLED)  # index.html's packages: installed while Pyodide booted
    # `start` runs in a later browser task, so the browser can paint the status line's new phase first.
    page = asyncio.ensure_future(start(boot.capture()))  # referenced: asyncio holds tasks weakly
