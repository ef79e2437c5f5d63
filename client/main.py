"""Entry point of the browser app (PyScript runs this file on the page's main thread).

Start-up only: open the store, build the app state (client.app) and the page's components
(client.page), bind them to the state with Effects, and tell the page Python is ready.
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
    from client.components.type_area import TypeArea


async def start(typed_ahead: str | None) -> App:
    """Load what was saved, bind the page to the signals, and tell it that Python is ready.

    `typed_ahead`: a message sent before Python ran (client.boot.capture); it goes out first.
    """
    from client import devreload, image_store, page, storage
    from client.app import App
    from client.rpc import Client

    boot.reach(boot.MODULES_IMPORTED)
    store, images = await asyncio.gather(storage.open_store(), image_store.open_images(), return_exceptions=True)
    if isinstance(store, BaseException):
        raise store
    # Without a database for images (a browser that refuses one) they are kept for this visit only.
    app = App(Client(), store, None if isinstance(images, BaseException) else images)
    components = page.build(app)
    send_typed_ahead(app, components.type_area, typed_ahead)
    app.keep(page.bind(app, components))
    boot.reach(boot.FIRST_RENDER)
    page.enable(components)
    boot.reach(boot.READY)
    app.streams.resume_all()  # answers that were on their way when the page went away
    app.spawn(app.check_health())
    app.spawn(app.catalog.watch())  # downloads that were running when the page went away
    app.spawn(page.enable_markdown(app))
    app.spawn(app.tidy_images())
    devreload.start(app.spawn)
    return app


def send_typed_ahead(app: App, type_area: TypeArea, typed_ahead: str | None) -> None:
    """The box is the app's now: what was typed ahead goes out before the first render shows the chat."""
    sent_since = boot.take_over(captured=typed_ahead is not None)
    typed = typed_ahead if typed_ahead is not None else sent_since
    if typed is not None and not app.send(typed):
        type_area.fill(typed)  # the open chat's answer is being resumed: the text waits in the box


if sys.platform == "emscripten":
    boot.reach(boot.INTERPRETER_READY)
    boot.reach(boot.PACKAGES_INSTALLED)  # index.html's packages: installed while Pyodide booted
    # `start` runs in a later browser task, so the browser can paint the status line's new phase first.
    page = asyncio.ensure_future(start(boot.capture()))  # referenced: asyncio holds tasks weakly
