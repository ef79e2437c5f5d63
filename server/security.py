"""Safe to leave running: an optional API key on the API, and strict headers on every response."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ErrorShapes

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Pyodide compiles WebAssembly ('wasm-unsafe-eval'), and its loader and PyScript's bundle call
# eval/Function at start-up ('unsafe-eval': without it Python never starts). Nothing else: no
# other origin, no inline script or style, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ApiKeyGuard:
    """With a key set, every path under `guarded` (the guarded routes' prefixes: `/api/`, `/v1/`,
    so that an unknown path there is a 401 too, not a 404 that says what exists) needs
    `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_key: str, guarded: tuple[str, ...], shapes: ErrorShapes) -> None:
        self.app = app
        self.key = api_key.encode()
        self.guarded = guarded
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.key or not path.startswith(self.guarded):
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        # compare_digest: the time taken must not tell an attacker how much of the key matched
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key):
            await self.app(scope, receive, send)
            return
        message = "missing or wrong API key: send the header `Authorization: Bearer <API_KEY>`"
        body = self.shapes.encode(path, 401, "invalid_api_key", message)
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
