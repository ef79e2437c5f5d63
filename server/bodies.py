"""Request bodies: read within a size limit, decoded strictly into their declared type."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from msgspec import Struct
from starlette.requests import Request

from server.errors import ApiError
from wire.routes import Route

T = TypeVar("T")
Req = TypeVar("Req", bound=Struct)


async def body_of(request: Request, route: Route[Req, Any]) -> Req:
    """The request's body, as the type its route declares, within the MAX_BODY_BYTES limit."""
    if route.request is None:
        raise TypeError(f"{route.method} {route.path} takes no body")
    limit: int = request.app.state.settings.max_body_bytes
    return decode_body(await read_body(request, limit), route.request)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over `limit` (declared or sent)."""
    too_large = ApiError(413, "request_too_large", f"the body is over the {limit}-byte limit")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def decode_body(body: bytes, type: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type, strict=True)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from exc
