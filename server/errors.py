"""One error shape everywhere: {"error": {"type", "message"}}, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from client.protocol import ErrorBody, ErrorEvent

log = logging.getLogger("snake_llama")


class ApiError(Exception):
    def __init__(self, status: int, type: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers


def error_response(status: int, type: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = msgspec.json.encode(ErrorBody(ErrorEvent(type, message)))
    return Response(body, status, headers=headers, media_type="application/json")


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.type, exc.message, exc.headers)


_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(
        exc.status_code, _HTTP_TYPES.get(exc.status_code, "http_error"), str(exc.detail), exc.headers
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "the server failed unexpectedly; see its log")
