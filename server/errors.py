"""One error shape everywhere, never a traceback.

Our API: `{"error": {"type", "message"}}`. Under the OpenAI front door's paths the same errors
take OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`, so OpenAI clients raise
the right exception; on the Ollama front door's, Ollama's `{"error": "..."}`; on Anthropic's,
`{"type": "error", "error": {"type", "message"}}`. Which paths those are comes from the route
table (server.app).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

log = logging.getLogger("snake_llama")


class ApiError(Exception):
    def __init__(self, status: int, type: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers


_OPENAI_TYPES = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


def our_error(status: int, type: str, message: str) -> dict[str, object]:
    return {"error": {"type": type, "message": message}}


def openai_error(status: int, type: str, message: str) -> dict[str, object]:
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": type, "param": None}}


def ollama_error(status: int, type: str, message: str) -> dict[str, object]:
    return {"error": message}


_ANTHROPIC_TYPES = {
    401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error",
}


def anthropic_error(status: int, type: str, message: str) -> dict[str, object]:
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


Shape = Callable[[int, str, str], dict[str, object]]


class ErrorShapes:
    """Which shape an error takes on a path: a front door's own on its paths (`by_path`: Ollama's
    share our `/api/` prefix, Anthropic's OpenAI's `/v1/`), else OpenAI's under `openai_prefixes`,
    ours elsewhere."""

    def __init__(self, openai_prefixes: tuple[str, ...], by_path: Mapping[str, Shape] | None = None) -> None:
        self.openai_prefixes = openai_prefixes
        self.by_path = dict(by_path or {})

    def body(self, path: str, status: int, type: str, message: str) -> dict[str, object]:
        shape = self.by_path.get(path) or (openai_error if path.startswith(self.openai_prefixes) else our_error)
        return shape(status, type, message)

    def encode(self, path: str, status: int, type: str, message: str) -> bytes:
        return msgspec.json.encode(self.body(path, status, type, message))


def error_response(
    request: Request, status: int, type: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    shapes: ErrorShapes = request.app.state.error_shapes
    body = shapes.encode(request.url.path, status, type, message)
    return Response(body, status, headers=headers, media_type="application/json")


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.type, exc.message, exc.headers)


_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = _HTTP_TYPES.get(exc.status_code, "http_error")
    return error_response(request, exc.status_code, kind, str(exc.detail), exc.headers)


async def on_hang_up(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its body was in: a hang-up, not a fault.

    Nobody is left to read the response; 499 (nginx's "client closed request") is for the access log.
    """
    assert isinstance(exc, ClientDisconnect)
    log.info("client hung up during the request body: %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal_error", "the server failed unexpectedly; see its log")
