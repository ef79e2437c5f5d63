"""Entry point of the browser app (PyScript runs this file on the page's main thread).

Start-up only: open the store, build the app state (client.app) and the page's components
(client.page), bind them to the state with Effects, and tell the page Python is ready.
Start-up is marked in phases (client.boot): the first lines mark the interpreter ready and open
the message box, which from then on must echo every keystroke at once, so start-up goes on in
short steps with yields to the browser between them: the app's modules are imported a few at a
time (`MODULES`), and each later step is a task of its own.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from client import boot

if TYPE_CHECKING:
    from client.app import App
    from client.components.type_area import TypeArea


# What `start` imports, leaves first, so that each slice of client.boot.import_sliced stays short.
# (Order only shapes the slices: a module's imports that are not in yet come with it.)
MODULES = (
    "msgspec", "reaktiv", "wire.events", "wire.types", "wire.routes", "client.rpc", "client.images",
    "client.pictures", "client.image_store", "client.mathml", "client.markdown", "client.state",
    "client.presets", "client.library", "client.catalog", "client.streams", "client.app",
    "client.components.attachments", "client.components.chat_area", "client.components.chat_settings",
    "client.components.menu", "client.components.model_picker", "client.components.models_panel",
    "client.components.chat_list", "client.components.sidebar", "client.components.tools_panel",
    "client.page", "client.storage", "client.devreload",
)


async def start(typing: boot.Typing) -> App:
    """Load what was saved, bind the page to the signals, and tell it that Python is ready.

    `typing`: when keys were pressed, so that work that can wait waits for a pause.
    """
    await boot.import_sliced(MODULES)
    from client import devreload, image_store, page, storage
    from client.app import App
    from client.rpc import Client

    boot.reach(boot.MODULES_IMPORTED)
    store, images = await asyncio.gather(storage.open_store(), image_store.open_images(), return_exceptions=True)
    if isinstance(store, BaseException):
        raise store
    # Without a database for images (a browser that refuses one) they are kept for this visit only.
    app = App(Client(), store, None if isinstance(images, BaseException) else images)
    await asyncio.sleep(0)  # a browser task per step from here: the box echoes in between
    components = page.build(app)
    send_typed_ahead(app, components.type_area)
    await asyncio.sleep(0)
    app.keep(page.bind(app, components))
    boot.reach(boot.FIRST_RENDER)
    await asyncio.sleep(0)
    page.enable(components)
    boot.reach(boot.READY)
    app.streams.resume_all()  # answers that were on their way when the page went away
    app.spawn(app.check_health())
    app.spawn(app.catalog.watch())  # downloads that were running when the page went away
    app.spawn(page.enable_markdown(app, typing))
    app.spawn(app.tidy_images())
    devreload.start(app.spawn)
    return app


def send_typed_ahead(app: App, type_area: TypeArea) -> None:
    """The box is the app's now: a message sent while the app loaded goes out before the first render."""
    typed = boot.take_over()
    if typed is not None and not app.send(typed):
        type_area.fill(typed)  # the open chat's answer is being resumed: the text waits in the box


if sys.platform == "emscripten":
    boot.reach(boot.INTERPRETER_READY)
    boot.reach(boot.PACKAGES_INSTALLED)  # index.html's packages: installed while Pyodide booted
    typing = boot.Typing()
    typing_listener = boot.watch_typing(typing)  # referenced: JS holds it for the page's lifetime
    boot.open_box()
    # `start` runs in a later browser task, so the browser can paint the status line's new phase first.
    page = asyncio.ensure_future(start(typing))  # referenced: asyncio holds tasks weakly
