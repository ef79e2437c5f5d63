"""Completions over llama.cpp's private listener, for a model loaded with a vision projector.

With a projector loaded, llama.cpp's OpenAI completions path (the in-process call) takes a prompt
only as one string, its images dropped and its control-token text parsed. Its native `/completion`
route still takes token ids, and a prompt with images as `{"prompt_string", "multimodal_data"}`;
its chunks are translated into the OpenAI shape the engine reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

ROUTE = "/completion"


def stream_completion(http: httpx.Client, request: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
    """Stream `request`'s answer into `on_chunk` (OpenAI-shaped chunks) until it ends or
    `on_chunk` returns True; leaving closes the connection, at which llama.cpp cancels the task."""
    # one connection per answer: llama.cpp closes a streamed one when the answer ends
    with http.stream("POST", ROUTE, json=request, headers={"Connection": "close"}, timeout=None) as response:
        if response.status_code != 200:
            response.read()
            on_chunk({"error": _error_of(response)})
            return
        for line in response.iter_lines():
            if line.startswith("data: ") and on_chunk(as_openai(json.loads(line.removeprefix("data: ")))):
                return


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    return error if isinstance(error, dict) else {"message": f"llama.cpp {ROUTE}: {response.text}"}


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
