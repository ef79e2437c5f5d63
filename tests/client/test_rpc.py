"""The browser's RPC stub on CPython: SSE framing, event decoding, HTTP errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from client.rpc import SseParser, error_from_http, events_from_chunks, parse_health, parse_listing, parse_tool_result
from tests.harness import run_async
from wire.events import DoneEvent, ErrorEvent, Event, QueuedEvent, TokenEvent
from wire.routes import CONVERSE, MODELS
from wire.types import Health, TemplateInfo

DONE = DoneEvent(stop_reason="stop", prompt_tokens=5, completion_tokens=2, ttft_s=0.1, tokens_per_s=20.0)


def frame(events: Iterable[Any], eol: str = "\r\n", ping: bool = False) -> bytes:
    """Events as a server writes them (sse-starlette style), optionally with ping comments."""
    out = []
    for event in events:
        if ping:
            out.append(f": ping{eol}{eol}")
        name, data = CONVERSE.encode_event(event)
        out.append(f"event: {name}{eol}data: {data}{eol}{eol}")
    return "".join(out).encode()


def parse_in_chunks(data: bytes, cuts: Iterable[int]) -> list[tuple[str, str]]:
    parser = SseParser()
    events: list[tuple[str, str]] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(data[start:cut])
        start = cut
    events += parser.feed(data[start:])
    return events


def collect(chunks: list[bytes]) -> list[Any]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def run() -> list[Any]:
        return [event async for event in events_from_chunks(CONVERSE, source())]

    return run_async(run())


def test_parses_named_events_with_crlf_lf_and_cr_line_ends() -> None:
    for eol in ("\r\n", "\n", "\r"):
        data = frame([TokenEvent("Paris"), DONE], eol=eol, ping=True)
        names = [name for name, _ in SseParser().feed(data)]
        assert names == ["token", "done"], eol


def test_field_rules_multiline_data_and_default_name() -> None:
    stream = b"data: a\ndata:b\nid: 7\nretry: 10\n\ndata\n\nevent: x\n\n: c\n"
    assert SseParser().feed(stream) == [("message", "a\nb"), ("message", "")]


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b'event: token\r\ndata: {"text":"a"}\r\n') == []
    assert parser.feed(b"\r") == [("token", '{"text":"a"}')]
    # The LF that completes the CRLF in the next chunk is not a second blank line.
    assert parser.feed(b'\nevent: token\r\ndata: {"text":"b"}\r\n\r\n') == [("token", '{"text":"b"}')]


texts = st.text(st.characters(codec="utf-8"), max_size=12)  # any text, incl. newlines, emoji, CR
wire_events = st.lists(st.one_of(texts.map(TokenEvent), st.integers(0, 50).map(QueuedEvent)), max_size=8).map(
    lambda events: [*events, DONE]
)


@given(wire_events, st.sampled_from(["\r\n", "\n", "\r"]), st.booleans(), st.data())
def test_any_split_of_a_valid_stream_yields_the_same_events(
    events: list[Event], eol: str, ping: bool, data: st.DataObject
) -> None:
    stream = frame(events, eol=eol, ping=ping)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    expected = [CONVERSE.encode_event(event) for event in events]
    assert parse_in_chunks(stream, cuts) == expected
    one_byte_chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert collect(one_byte_chunks) == events


def test_stream_stops_at_done_and_skips_unknown_events() -> None:
    stream = frame([TokenEvent("a")]) + b"event: future\r\ndata: {}\r\n\r\n" + frame([DONE, TokenEvent("late")])
    assert collect([stream]) == [TokenEvent("a"), DONE]


def test_error_event_ends_the_stream() -> None:
    error = ErrorEvent(type="engine", message="out of memory")
    assert collect([frame([TokenEvent("a"), error, TokenEvent("b")])]) == [TokenEvent("a"), error]


def test_stream_cut_before_done_ends_with_an_error() -> None:
    events = collect([frame([TokenEvent("partial")])])
    assert events[0] == TokenEvent("partial")
    assert isinstance(events[-1], ErrorEvent) and events[-1].type == "disconnected"
    assert len(events) == 2


def test_undecodable_event_becomes_a_protocol_error() -> None:
    events = collect([b'event: token\r\ndata: {"txt": 1}\r\n\r\n', frame([DONE])])
    assert len(events) == 1
    assert isinstance(events[0], ErrorEvent) and events[0].type == "protocol"


def test_http_error_body_becomes_the_servers_error() -> None:
    body = '{"error": {"type": "queue_full", "message": "try again in 2 s"}}'
    assert error_from_http(503, body) == ErrorEvent(type="queue_full", message="try again in 2 s")


def test_http_error_without_json_still_explains_itself() -> None:
    event = error_from_http(502, "<html>Bad Gateway</html>")
    assert event.type == "http_502" and "Bad Gateway" in event.message
    assert error_from_http(500, "").message == "HTTP 500: no details"


def test_api_key_header_and_401() -> None:
    from client.rpc import UNAUTHORIZED, error_for_status, headers_for

    assert "Authorization" not in headers_for("")
    assert headers_for("k3y")["Authorization"] == "Bearer k3y"
    body = '{"error": {"type": "invalid_api_key", "message": "wrong key"}}'
    assert error_for_status(401, body) == ErrorEvent(type=UNAUTHORIZED, message="wrong key")
    assert error_for_status(401, "nope").type == UNAUTHORIZED
    assert error_for_status(503, body).type == "invalid_api_key"


def test_health_with_and_without_a_template() -> None:
    body = (
        '{"status": "ok", "engine": "llama-cpp", "model": "gemma", "model_path": "/m.gguf",'
        ' "template": {"name": "gemma3 chat template", "source": "gguf"}, "uptime_s": 3}'
    )
    health = parse_health(body)
    assert health.template == TemplateInfo(name="gemma3 chat template", source="gguf")
    assert (health.status, health.engine, health.model) == ("ok", "llama-cpp", "gemma")
    older = parse_health('{"status": "ok", "engine": "llama-cpp", "model": "gemma", "model_path": null}')
    assert older.template is None and older.model_path is None
    assert parse_health("not json") == Health(status="ok")  # up, even if we cannot read it


def test_loading_events_decode_and_do_not_end_the_stream() -> None:
    from wire.events import LoadingEvent

    done = DoneEvent(
        stop_reason="stop", prompt_tokens=5, completion_tokens=2, ttft_s=0.1, tokens_per_s=20.0, model="tiny.gguf"
    )
    events = [LoadingEvent("tiny.gguf"), LoadingEvent("other.gguf"), TokenEvent("Paris"), done]
    assert collect([frame(events)]) == events


def test_models_list_and_what_is_not_one() -> None:
    from wire.types import ModelInfo, ModelList

    body = (
        '{"default": "big.gguf", "models": [{"name": "big.gguf", "usable": true, "engine": "llama-cpp",'
        ' "n_ctx": 4096, "template": "gguf", "loaded": true},'
        ' {"name": "notes.txt", "usable": false, "reason": "not a model file"}], "extra": 1}'
    )
    assert parse_listing(MODELS, body) == ModelList(
        default="big.gguf",
        models=[
            ModelInfo(name="big.gguf", usable=True, engine="llama-cpp", n_ctx=4096, template="gguf", loaded=True),
            ModelInfo(name="notes.txt", usable=False, reason="not a model file"),
        ],
    )
    assert parse_listing(MODELS, '{"detail": "Not Found"}') is None
    assert parse_listing(MODELS, "<html>") is None


def test_a_tool_call_answer_or_refusal_is_a_result_the_model_reads() -> None:
    from wire.types import ToolCallResult

    assert parse_tool_result(200, '{"text": "HI", "is_error": false}') == ToolCallResult("HI", False)
    refused = parse_tool_result(404, '{"error": {"type": "tool_not_found", "message": "no tool x"}}')
    assert refused == ToolCallResult("The tool could not be called: no tool x", True)
    garbled = parse_tool_result(200, "{}")
    assert garbled.is_error and "could not be read" in garbled.text


def test_token_count_answers_and_errors() -> None:
    from client.rpc import parse_token_count
    from wire.types import TokenCount

    body = '{"model": "m.gguf", "tokens": 7, "overhead": 20, "n_ctx": 512, "max_tokens": 64}'
    assert parse_token_count(200, body) == TokenCount("m.gguf", 7, 20, 512, 64)
    refused = '{"error": {"type": "invalid_request", "message": "too long"}}'
    assert parse_token_count(400, refused) == ErrorEvent(type="invalid_request", message="too long")
    garbled = parse_token_count(200, "{}")
    assert isinstance(garbled, ErrorEvent) and garbled.type == "protocol"
