"""Read an SSE response from /api/converse the way any HTTP client would."""

from __future__ import annotations

import json
from typing import Any

import httpx


def read_events(response: httpx.Response) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


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
