"""Request bodies (server.bodies): nesting is bounded before anything decodes it, in either front
door's error shape, and the bound is exact."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.bodies import MAX_DEPTH, nesting
from server.openai_api import CHAT_COMPLETIONS
from wire.routes import CONVERSE

HI = b'{"role": "user", "content": "hi"}'
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab[]{}"\\:, \n')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=40,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@given(JSON)
def test_nesting_is_the_depth_of_the_value_whatever_its_strings_hold(value: object) -> None:
    assert nesting(msgspec.json.encode(value)) == depth(value)


@pytest.mark.parametrize(("body", "expected"), [
    (b"", 0), (b"[", 1), (b"]]]", 0), (b'"[[[', 0), (b'"\\"[["', 0), (b'"\\\\"[[', 2), (b"\xff{\xfe[", 2),
])
def test_nesting_of_bytes_that_are_not_json(body: bytes, expected: int) -> None:
    assert nesting(body) == expected


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)


@pytest.mark.parametrize(("case", "body"), [
    ("100k-deep object", b'{"messages": [' + HI + b'], "x": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"),
    ("50k-deep unknown field", b'{"messages": [' + HI + b'], "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("deep tools", b'{"messages": [' + HI + b'], "tools": [{"type": "function", "function": {"name": "f", '
     b'"parameters": ' + b'{"items": ' * 3000 + b"{}" + b"}" * 3000 + b"}}]}"),
    ("2k-deep json_schema", b'{"messages": [' + HI + b'], "response_format": {"type": "json_schema", '
     b'"json_schema": {"name": "s", "schema": ' + b'{"properties": {"a": ' * 1000 + b"{}" + b"}}" * 1000 + b"}}}"),
])
def test_deep_bodies_are_a_400_that_says_so_in_openais_shape(live_server: str, case: str, body: bytes) -> None:
    r = post(live_server + CHAT_COMPLETIONS.path, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "too_deep" and error["type"] == "invalid_request_error"
    assert f"at most {MAX_DEPTH}" in error["message"]


def test_a_deep_body_on_our_api_is_our_400(live_server: str) -> None:
    body = b'{"conversation": {"messages": [{"user": true, "text": "hi", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}}"
    r = post(live_server + CONVERSE.path, body)
    assert r.status_code == 400 and r.json()["error"]["type"] == "too_deep"


def test_the_bound_is_exact_for_an_openai_client(live_server: str) -> None:
    """The body's own object is one level, so `x` may nest MAX_DEPTH - 1 deep, and no deeper."""
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key="none", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    answer = client.chat.completions.create(model="", messages=messages, max_tokens=1,
                                            extra_body={"x": nested(MAX_DEPTH - 1)})
    assert answer.choices[0].finish_reason in ("length", "stop")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="", messages=messages, max_tokens=1, extra_body={"x": nested(MAX_DEPTH)})
    assert refused.value.code == "too_deep" and f"{MAX_DEPTH + 1} deep" in refused.value.message
