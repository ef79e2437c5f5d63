"""Safe to leave running: an optional API key on the API, and strict headers on every response."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

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


def host_name(authority: str) -> str:
    """The host of a `Host` header or an origin's authority, without its port or IPv6 brackets."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def refuse(send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A JSON error sent before the app sees the request."""
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class SiteGuard:
    """Without an API key, whatever reaches the port is trusted, so the web pages a user visits
    must not reach it through their browser.

    - DNS rebinding: a site's name made to point at 127.0.0.1 arrives with that name in `Host`.
      Only loopback names, IP addresses (a name is what rebinding needs) and the configured HOST
      are served.
    - Cross-site requests: a page elsewhere may post to us without asking first (a form, or
      `text/plain`); the browser names it in `Origin`. Only our own origin and CORS_ORIGINS pass.
    """

    def __init__(self, app: ASGIApp, host: str, cors_origins: Iterable[str], shapes: ErrorShapes) -> None:
        self.app = app
        self.host = host
        self.origins = frozenset(o.rstrip("/") for o in cors_origins)
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        authority = headers.get("host", "")
        host, origin = host_name(authority), headers.get("origin")
        if authority and not (is_loopback(host) or is_ip_literal(host) or host == self.host):
            kind, message = "forbidden_host", (
                f"this server answers to loopback addresses and HOST, not {host!r}: set API_KEY to serve other names"
            )
        elif origin is not None and origin != f"{scope['scheme']}://{authority}" and origin not in self.origins:
            kind, message = "forbidden_origin", (
                f"requests from pages at {origin!r} are refused: add that origin to CORS_ORIGINS to allow them"
            )
        else:
            await self.app(scope, receive, send)
            return
        await refuse(send, 403, self.shapes.encode(scope.get("path", ""), 403, kind, message))


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


def key_name(headers: Headers, keys: Mapping[str, str]) -> str | None:
    """The name of the key a request carries, as `Authorization: Bearer <key>` or as
    `x-api-key: <key>` (Anthropic's clients), or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    sent = (token.strip() if scheme.lower() == "bearer" else headers.get("x-api-key", "").strip()).encode()
    # compare_digest, and every key compared: the time taken must not tell how much of a key matched
    matches = [name for name, key in keys.items() if hmac.compare_digest(sent, key.encode())]
    return matches[0] if sent and matches else None


KEY_NAME_STATE = "key_name"  # request.state's attribute for the name of the request's key


class ApiKeyGuard:
    """With keys set, every path under `guarded` (the guarded routes' prefixes: `/api/`, `/v1/`,
    so that an unknown path there is a 401 too, not a 404 that says what exists) needs one of
    them; the request's state names the key it sent."""

    def __init__(self, app: ASGIApp, keys: Mapping[str, str], guarded: tuple[str, ...], shapes: ErrorShapes) -> None:
        self.app = app
        self.keys = dict(keys)
        self.guarded = guarded
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        name = key_name(Headers(scope=scope), self.keys)
        if name is not None:  # what answers, metrics and the access log go by
            scope.setdefault("state", {})[KEY_NAME_STATE] = name
        if name is not None or not path.startswith(self.guarded):
            await self.app(scope, receive, send)
            return
        message = "missing or wrong API key: send the header `Authorization: Bearer <API_KEY>` (or `x-api-key`)"
        body = self.shapes.encode(path, 401, "invalid_api_key", message)
        await refuse(send, 401, body, [(b"www-authenticate", b"Bearer")])
