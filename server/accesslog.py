"""One access-log line per request: id, method, path, status, duration and token counts."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics, key_label, method_label, route_label
from server.security import KEY_NAME_STATE

log = logging.getLogger("snake_llama.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def printable(text: str) -> str:
    """`text` with control characters (a decoded `%0a`, say) escaped, so it cannot forge a log line."""
    return _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_ID.match(given) else uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            status = status or 500  # Starlette's outermost handler answers it, outside this middleware
            raise
        finally:
            # status 0: the client left before any response started
            state = scope.get("state", {})
            tokens = state.get("completion_tokens")
            key = state.get(KEY_NAME_STATE, "")  # the key's name, never the key
            log.info(
                "request_id=%s method=%s path=%s status=%s duration_ms=%.1f completion_tokens=%s key=%s",
                request_id, scope["method"], printable(scope["path"]), status or "-",
                (time.perf_counter() - started) * 1000, "-" if tokens is None else tokens, key or "-",
            )
            self.metrics.requests.labels(method_label(scope["method"]), route_label(scope), str(status)).inc()
            self.metrics.key_requests.labels(key_label(key)).inc()
