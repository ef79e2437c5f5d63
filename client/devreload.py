"""Dev mode only: reload the page when the server says client files changed.

The server (`python -m server --dev`) marks the page with `data-dev-reload="/dev/reload"` on <html> and
streams `/dev/reload`: a `hello` event carrying its boot id, then `reload` events. If the
stream drops (server restarting), we reconnect; a different boot id means new server code,
so the page reloads then too. Without the marker this does nothing and sends no request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from client.rpc import SseParser

RETRY_S = 0.5


def should_reload(boot_id: str | None, name: str, data: str) -> bool:
    """Given the boot id seen first, does this event mean the page is stale?"""
    return name == "reload" or (name == "hello" and boot_id is not None and data != boot_id)


async def watch(url: str) -> None:
    from js import fetch, location

    boot_id: str | None = None
    while True:
        try:
            response = await fetch(url)
            if not response.ok:
                return  # not a dev server after all
            reader = response.body.getReader()
            parser = SseParser()
            while True:
                result = await reader.read()
                if result.done:
                    break
                for name, data in parser.feed(result.value.to_bytes()):
                    if should_reload(boot_id, name, data):
                        location.reload()
                        return
                    if name == "hello":
                        boot_id = data
        except Exception:  # connection refused while the server restarts
            pass
        await asyncio.sleep(RETRY_S)


def start(spawn: Callable[[Coroutine[Any, Any, None]], object]) -> None:
    """Watch for reloads if the page is marked for it; `spawn` keeps the task referenced."""
    from js import document

    # getAttribute, not dataset: a missing dataset key raises AttributeError in Pyodide.
    url = document.documentElement.getAttribute("data-dev-reload")
    if url:
        spawn(watch(str(url)))
