"""Read an SSE response from /api/converse the way any HTTP client would."""

from __future__ import annotations

import json
from typing import Any

import httpx

from client.rpc import SseParser


def read_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """Events with their JSON data decoded, parsed by the browser's own SSE parser."""
    parser = SseParser()
    return [(name, json.loads(data)) for chunk in response.iter_bytes() for name, data in parser.feed(chunk)]


def converse(url: str, body: Any, timeout: float = 120) -> tuple[int, list[tuple[str, Any]]]:
    with httpx.stream("POST", f"{url}/api/converse", json=body, timeout=timeout) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, read_events(response)
        response.read()
        return response.status_code, [("http_error", response.json())]


def chat(*texts: str, **params: Any) -> dict[str, Any]:
    """A request body: alternating user/model messages, the last one from the user."""
    n = len(texts)
    messages = [{"user": (n - i) % 2 == 1, "text": t} for i, t in enumerate(texts)]
    return {"conversation": {"messages": messages}, "params": params}
