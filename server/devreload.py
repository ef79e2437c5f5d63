"""Dev mode only: tell open pages to reload when client files or the built CSS change.

The page listens on `/dev/reload`; each connection first gets the server's boot id, so a page
that reconnects after a server restart (uvicorn --reload) sees a new id and reloads as well.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from watchfiles import awatch

BOOT_ID = uuid.uuid4().hex


def reload_route(watched: list[Path]):  # type: ignore[no-untyped-def]
    async def dev_reload(request: Request) -> Response:
        async def events() -> AsyncIterator[dict[str, str]]:
            yield {"event": "hello", "data": BOOT_ID}
            paths = [p for p in watched if p.exists()]
            async for changes in awatch(*paths, stop_event=None):
                if any(not name.endswith((".gz", "~")) for _, name in changes):
                    yield {"event": "reload", "data": BOOT_ID}

        return EventSourceResponse(events(), ping=15)

    return dev_reload
