"""Request bodies: read within a size limit, checked for nesting, decoded strictly into their declared type."""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, TypeVar

import msgspec
from msgspec import Struct
from starlette.requests import Request

from server.errors import ApiError
from server.scheduler import Caller
from server.security import KEY_NAME_STATE
from wire.routes import Route

T = TypeVar("T")
Req = TypeVar("Req", bound=Struct)

# Arrays and objects nested deeper than this are refused before decoding: the decoder, and what
# reads the values later (templates, llama.cpp's schema-to-grammar), recurse once per level. Real
# requests, tool schemas included, stay far below it.
MAX_DEPTH = 64
# A JSON string, possessive so it never backtracks, and one left open runs to the end: one pass,
# whatever the body holds.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


async def body_of(request: Request, route: Route[Req, Any]) -> Req:
    """The request's body, as the type its route declares, within the MAX_BODY_BYTES limit."""
    if route.request is None:
        raise TypeError(f"{route.method} {route.path} takes no body")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        # a page on another site may post text/plain or a form without asking first; never JSON
        got = f"Content-Type {media_type!r}" if media_type else "no Content-Type"
        message = f"send the body as JSON, with Content-Type: application/json ({got})"
        raise ApiError(415, "unsupported_media_type", message)
    limit: int = request.app.state.settings.max_body_bytes
    body = await read_body(request, limit)
    depth = nesting(body)
    if depth > MAX_DEPTH:
        raise ApiError(400, "too_deep", f"the body nests arrays and objects {depth} deep; at most {MAX_DEPTH}")
    return decode_body(body, route.request)


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


def nesting(body: bytes) -> int:
    """How deep the body's arrays and objects nest, brackets inside strings aside (for any bytes,
    JSON or not, in time linear in their length)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def decode_body(body: bytes, type: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type, strict=True)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8 JSON: {exc}") from exc


def client_of(request: Request) -> Caller:
    """Who asks: the address its answers count against (MAX_ANSWERS_PER_CLIENT), and the name of
    its key (server.security), which the queue shares slots between."""
    return Caller(request.client.host if request.client else None, getattr(request.state, KEY_NAME_STATE, ""))


MAX_SCHEMA_BYTES = 32 * 1024


def check_schema_size(name: str, schema: object) -> None:
    """Refuse, naming it, a schema (a tool, a response format) too big to compile into a grammar."""
    size = len(msgspec.json.encode(schema)) if schema else 0
    if size > MAX_SCHEMA_BYTES:
        raise ApiError(400, "schema_too_large", f"{name} is {size} bytes of JSON; at most {MAX_SCHEMA_BYTES}")


async def hung_up(request: Request) -> None:
    """Returns when the client hangs up, once its body has been read (the next message is then
    the hang-up): what a handler that answers in one response waits on beside its work."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
