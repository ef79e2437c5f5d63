"""The browser's stub for the streaming RPCs declared in wire.routes.

This is the only module that knows how a call travels: the URL comes from the `Rpc`
declaration, the body is the msgspec-encoded request, and the answer is a server-sent
event stream decoded into the declared event types. Everything above it sees typed events,
and every failure (HTTP error, broken stream, network down) arrives as an `ErrorEvent`
so the chat can show it. `Client` holds what every call needs (the API key, the base URL).

The parser and the decoding are plain Python so CPython tests exercise them; the browser
APIs (`js.fetch`, stream readers) are imported inside the functions that call them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, TypeVar

import msgspec

from wire.events import ErrorBody, ErrorEvent, Event
from wire.routes import ANSWER, CALL_TOOL, CONVERSE, HEALTH, MODELS, STOP_ANSWER, TOKENS, TOOLS, Route, Rpc
from wire.types import (
    ConverseRequest,
    Health,
    ModelList,
    TokenCount,
    TokensRequest,
    ToolCallRequest,
    ToolCallResult,
    ToolList,
)

Req = TypeVar("Req", bound=msgspec.Struct)
Res = TypeVar("Res", bound=msgspec.Struct)
Ev = TypeVar("Ev", bound=msgspec.Struct)

# An event after which the server sends nothing more for this call.
TERMINAL_EVENTS = frozenset({"done", "error"})

_EOL = re.compile(r"\r\n|\r|\n")


class SseParser:
    """Incremental text/event-stream parser (WHATWG rules for the fields we use).

    Feed it bytes as they arrive, split anywhere (even inside a UTF-8 character or
    between CR and LF); it returns the complete (event name, data) pairs so far.
    Comment lines (":" ping) are skipped; `id` and `retry` are ignored.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._skip_lf = False  # the last chunk ended in CR: a leading LF completes CRLF
        self._started = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        buffer = self._buffer + text
        events: list[tuple[str, str]] = []
        pos = 0
        for match in _EOL.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                self._skip_lf = True
            self._line(buffer[pos : match.start()], events)
            pos = match.end()
        self._buffer = buffer[pos:]
        return events

    def _line(self, line: str, events: list[tuple[str, str]]) -> None:
        if not line:
            if self._data:
                events.append((self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)


def error_from_http(status: int, body: str) -> ErrorEvent:
    """Turn an HTTP error answer into the event the chat shows."""
    try:
        return msgspec.json.decode(body, type=ErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        detail = body.strip()[:300] or "no details"
        return ErrorEvent(type=f"http_{status}", message=f"HTTP {status}: {detail}")


async def events_from_chunks(rpc: Rpc[Any, Ev], chunks: AsyncIterable[bytes]) -> AsyncIterator[Ev | ErrorEvent]:
    """Decode an SSE byte stream into rpc's event types, ending after a terminal event.

    Unknown event names are skipped (a newer server may add some); a stream that ends
    before a terminal event, or an event that does not decode, ends with an ErrorEvent.
    """
    parser = SseParser()
    async for chunk in chunks:
        for name, data in parser.feed(chunk):
            if name not in rpc.events:
                continue
            try:
                event = rpc.decode_event(name, data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                yield ErrorEvent(type="protocol", message=f"bad {name!r} event from server: {exc}")
                return
            yield event
            if name in TERMINAL_EVENTS:
                return
    yield ErrorEvent(type="disconnected", message="The answer stream ended before it was complete.")


async def _read_chunks(reader: Any) -> AsyncIterator[bytes]:
    """Bytes from a JS ReadableStreamDefaultReader, as they arrive."""
    while True:
        result = await reader.read()
        if result.done:
            return
        yield result.value.to_bytes()


UNAUTHORIZED = "unauthorized"


def headers_for(key: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def error_for_status(status: int, body: str) -> ErrorEvent:
    """Like error_from_http, but a 401 always has the one type the page reacts to (ask for the key)."""
    error = error_from_http(status, body)
    if status == 401:
        return ErrorEvent(type=UNAUTHORIZED, message=error.message)
    return error


async def stream(
    rpc: Rpc[Req, Ev], request: Req, api_key: str = "", base_url: str = ""
) -> AsyncIterator[Ev | ErrorEvent]:
    """Call a streaming RPC from the browser (Pyodide) and yield its decoded events."""
    if rpc.request is None or not isinstance(request, rpc.request):
        raise TypeError(f"{rpc.method} {rpc.path} takes no {type(request).__name__}")
    init = {"method": rpc.method, "headers": headers_for(api_key), "body": msgspec.json.encode(request).decode()}
    async for event in _fetch_events(rpc, base_url + rpc.path, init):
        yield event


async def _fetch_events(rpc: Rpc[Any, Ev], url: str, init: dict[str, Any]) -> AsyncIterator[Ev | ErrorEvent]:
    """Fetch `url` and yield the events of its answer, decoded as `rpc`'s.

    Closing the generator early (the caller's task cancelled by Stop) aborts the fetch and
    cancels the body reader: the server sees the disconnect.
    """
    from js import AbortController, fetch  # browser only: keeps this module importable on CPython

    from client.browser import to_init

    controller = AbortController.new()
    finished = False
    try:
        try:
            response = await fetch(url, to_init({**init, "signal": controller.signal}))
        except Exception as exc:  # a JsException: server down, connection refused
            finished = True
            yield ErrorEvent(type="network", message=f"Cannot reach the server: {exc}")
            return
        if not response.ok:
            finished = True
            yield error_for_status(int(response.status), str(await response.text()))
            return
        try:
            async for event in events_from_chunks(rpc, _read_chunks(response.body.getReader())):
                yield event
        except Exception as exc:  # the connection broke mid-answer
            yield ErrorEvent(type="network", message=f"Connection lost: {exc}")
        finished = True
    finally:
        if not finished:
            controller.abort()  # rejects the pending read / fetch and closes the connection


def parse_health(body: str) -> Health:
    """A `/health` answer that came back OK; a body we cannot read still means the server is up."""
    try:
        return HEALTH.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Health(status="ok")


def parse_listing(route: Route[Any, Res], body: str) -> Res | None:
    """A listing's answer (`GET /api/models`, `/api/tools`); None when it cannot be read (the page
    then offers the default model only, or no tools)."""
    try:
        return route.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def parse_tool_result(status: int, body: str) -> ToolCallResult:
    """A `POST /api/tools/call` answer; a refusal is an error result too, which the model reads."""
    if not 200 <= status < 300:
        return ToolCallResult(f"The tool could not be called: {error_for_status(status, body).message}", True)
    try:
        return CALL_TOOL.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return ToolCallResult(f"The tool's answer could not be read: {exc}", True)


def parse_token_count(status: int, body: str) -> TokenCount | ErrorEvent:
    """A `POST /api/tokens` answer: the count, or the error to show."""
    if not 200 <= status < 300:
        return error_for_status(status, body)
    try:
        return TOKENS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return ErrorEvent(type="protocol", message=f"bad token count from server: {exc}")


def parse_answer(route: Route[Any, Res], status: int, body: str) -> Res | ErrorEvent | None:
    """A JSON call's answer: its declared type, None for a route that answers none (a 204), or
    the error to show."""
    if not 200 <= status < 300:
        return error_for_status(status, body)
    if route.response is None:
        return None
    try:
        return route.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return ErrorEvent(type="protocol", message=f"the server's answer could not be read: {exc}")


STARTING_RETRIES = 60  # a server still loading its model answers 503 with Retry-After: 1; wait about a minute


class Client:
    """The page's connection to its server: where it is, and the API key the user gave.

    The key is asked for when the server answers 401, kept by the page in browser storage,
    and sent on every call from then on.
    """

    def __init__(self, api_key: str = "", base_url: str = "") -> None:
        self.api_key = api_key.strip()
        self.base_url = base_url

    def use_key(self, key: str) -> None:
        self.api_key = key.strip()

    def converse(self, request: ConverseRequest) -> AsyncIterator[Event]:
        """POST the conversation; yield the answer's id, token/queued events, then one done or error event."""
        return stream(CONVERSE, request, self.api_key, self.base_url)

    def resume(self, answer_id: str) -> AsyncIterator[Event]:
        """An answer the server still holds, from its start (as `converse` streamed it); an ErrorEvent
        of type "answer_not_found" once the server has let it go."""
        init = {"method": ANSWER.method, "headers": headers_for(self.api_key), "cache": "no-store"}
        return _fetch_events(ANSWER, self.base_url + ANSWER.url(answer_id=answer_id), init)

    async def stop(self, answer_id: str) -> bool:
        """Ask the server to cancel an answer now; False if it could not be asked (the answer then
        ends on its own once nobody reads it)."""
        from js import fetch

        from client.browser import to_init

        init = to_init({"method": STOP_ANSWER.method, "headers": headers_for(self.api_key)})
        try:
            response = await fetch(self.base_url + STOP_ANSWER.url(answer_id=answer_id), init)
        except Exception:  # a JsException: server down, connection lost
            return False
        return bool(response.ok)

    async def health(self) -> Health | None:
        """What `/health` says; None when the server cannot be reached or is not ready."""
        from js import fetch

        from client.browser import to_init

        try:
            key = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}  # the details need it
            init = {"cache": "no-store", "headers": key}
            response = await fetch(self.base_url + HEALTH.path, to_init(init))
            if not response.ok:
                return None
            body = str(await response.text())
        except Exception:  # a JsException: server down, connection lost
            return None
        return parse_health(body)

    async def count_tokens(self, request: TokensRequest) -> TokenCount | ErrorEvent:
        """How many tokens a text takes with a model (the server loads it if need be); an ErrorEvent
        when it cannot say. A server still starting is waited for."""
        import asyncio

        from js import fetch

        from client.browser import to_init

        headers = headers_for(self.api_key) | {"Accept": "application/json"}
        init = to_init({"method": TOKENS.method, "headers": headers, "body": msgspec.json.encode(request).decode()})
        for _ in range(STARTING_RETRIES):
            try:
                response = await fetch(self.base_url + TOKENS.path, init)
                status, body = int(response.status), str(await response.text())
            except Exception as exc:  # a JsException: server down, connection lost
                return ErrorEvent(type="network", message=f"Cannot reach the server: {exc}")
            if status != 503 or not response.headers.has("Retry-After"):
                return parse_token_count(status, body)
            await asyncio.sleep(1)  # what the server asks (Retry-After: 1) while its model loads
        return parse_token_count(status, body)

    async def models(self) -> ModelList | None:
        """The models the server offers; None when it does not say (an older server: 404), or cannot be reached."""
        return await self._listing(MODELS)

    async def tools(self) -> ToolList | None:
        """The tools the server offers (the built-in ones and its MCP servers'); None when it does not say."""
        return await self._listing(TOOLS)

    async def _listing(self, route: Route[Any, Res]) -> Res | None:
        from js import fetch

        from client.browser import to_init

        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = await fetch(self.base_url + route.path, to_init({"cache": "no-store", "headers": headers}))
            if not response.ok:
                return None
            body = str(await response.text())
        except Exception:  # a JsException: server down, connection lost
            return None
        return parse_listing(route, body)

    async def call(
        self, route: Route[Any, Res], body: msgspec.Struct | None = None, **params: str
    ) -> Res | ErrorEvent | None:
        """Call a JSON route of wire.routes (its path filled in with `params`): its answer, None
        for one that answers no body, or an ErrorEvent (the server's refusal, or no server)."""
        from js import fetch

        from client.browser import to_init

        init: dict[str, Any] = {"method": route.method, "cache": "no-store",
                                "headers": headers_for(self.api_key) | {"Accept": "application/json"}}
        if body is not None:
            init["body"] = msgspec.json.encode(body).decode()
        try:
            response = await fetch(self.base_url + route.url(**params), to_init(init))
            status, text = int(response.status), str(await response.text())
        except Exception as exc:  # a JsException: server down, connection lost
            return ErrorEvent(type="network", message=f"Cannot reach the server: {exc}")
        return parse_answer(route, status, text)

    async def call_tool(self, request: ToolCallRequest) -> ToolCallResult:
        """Run a tool of one of the server's MCP servers; any failure is an error result. Cancelling
        the task aborts the request, and the server then cancels the call."""
        from js import AbortController, fetch

        from client.browser import to_init

        controller = AbortController.new()
        headers = headers_for(self.api_key) | {"Accept": "application/json"}
        body = msgspec.json.encode(request).decode()
        init = to_init({"method": CALL_TOOL.method, "headers": headers, "body": body, "signal": controller.signal})
        finished = False
        try:
            response = await fetch(self.base_url + CALL_TOOL.path, init)
            status, text = int(response.status), str(await response.text())
            finished = True
        except Exception as exc:  # a JsException: server down, connection lost
            return ToolCallResult(f"The tool could not be called: cannot reach the server ({exc})", True)
        finally:
            if not finished:
                controller.abort()
        return parse_tool_result(status, text)
