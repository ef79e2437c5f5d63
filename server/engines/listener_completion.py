"""Streamed answers over llama.cpp's private listener, as OpenAI-shaped chunks.

`/v1/completions` takes our token ids, `/v1/chat/completions` a chat with tools. With a
projector loaded, the OpenAI completions path takes a prompt only as one string, its images
dropped and its control-token text parsed; the native `/completion` route still takes token ids,
and a prompt with images as `{"prompt_string", "multimodal_data"}`: its chunks are translated
into the OpenAI shape the engine reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

NATIVE = "/completion"
COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
END = "[DONE]"  # the OpenAI routes' last line


def stream_completion(
    http: httpx.Client, request: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool], route: str = NATIVE,
) -> None:
    """Stream `request`'s answer on `route` into `on_chunk` (OpenAI-shaped chunks) until it ends
    or `on_chunk` returns True; leaving closes the connection, at which llama.cpp cancels the task."""
    # one connection per answer: llama.cpp closes a streamed one when the answer ends
    with http.stream("POST", route, json=request, headers={"Connection": "close"}, timeout=None) as response:
        if response.status_code != 200:
            response.read()
            on_chunk({"error": _error_of(response, route)})
            return
        for line in response.iter_lines():
            chunk = _chunk_of(line)
            if chunk is not None and on_chunk(as_openai(chunk) if route == NATIVE else chunk):
                return


def _chunk_of(line: str) -> dict[str, Any] | None:
    """One server-sent line's chunk: `data: {...}`, or `error: {...}` for a failure mid-stream."""
    field, _, value = line.partition(": ")
    if field not in ("data", "error") or not value or value == END:
        return None
    chunk = json.loads(value)
    if not isinstance(chunk, dict):
        return None
    return chunk if field == "data" or "error" in chunk else {"error": chunk}


def _error_of(response: httpx.Response, route: str) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    return error if isinstance(error, dict) else {"message": f"llama.cpp {route}: {response.text}"}


def as_openai(chunk: dict[str, Any]) -> dict[str, Any]:
    """One `/completion` chunk as the OpenAI completions chunk llama.cpp's other path sends."""
    if "error" in chunk:
        return chunk
    out: dict[str, Any] = {}
    if "prompt_progress" in chunk:
        out["prompt_progress"] = chunk["prompt_progress"]
    finish = ("length" if chunk.get("stop_type") == "limit" else "stop") if chunk.get("stop") else None
    if chunk.get("content") or finish:
        out["choices"] = [{"text": chunk.get("content") or "", "finish_reason": finish}]
    if finish:
        out["usage"] = {"prompt_tokens": chunk.get("tokens_evaluated", 0),
                        "completion_tokens": chunk.get("tokens_predicted", 0)}
    if isinstance(chunk.get("timings"), dict):
        out["timings"] = chunk["timings"]
    return out
