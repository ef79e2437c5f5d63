"""5. Memory: resident size of our server (with the child process its model runs in) after load and
after 100 chats, next to the model file.

A fresh `python -m server` (llama-cpp engine) is started for this, so its figures do not include
the other sections' work. RSS is split into anonymous memory (heap: KV cache, Python objects) and
file-backed pages (the model, which llama.cpp maps from the file: shared with the page cache and
with any other process mapping the same file). The peer's RSS right after its own load is given
alongside, and so are the figures of the engine before this one (llama-cpp-python, one chat at a
time, bench run of 2026-11-25 on this model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bench.common import CHAT_PARAMS, start_ours, start_peer, stop
from bench.first_token import QUESTIONS
from tests.harness import chat, iter_sse, rss

# our server's VmRSS with the llama-cpp-python engine (bench/results.md of 2026-11-25), MiB
BEFORE_MIB = {"after_load": 426, "after_chats": 516, "chats": 100}


def _chats(url: str, n: int, max_tokens: int) -> int:
    errors = 0
    with httpx.Client(timeout=httpx.Timeout(300, connect=5)) as http:
        for i in range(n):
            body = chat(f"{QUESTIONS[i % len(QUESTIONS)]} ({i})", **CHAT_PARAMS, max_tokens=max_tokens)
            with http.stream("POST", f"{url}/api/converse", json=body) as response:
                names = [name for name, _ in iter_sse(response)] if response.status_code == 200 else []
                if "done" not in names:
                    errors += 1
    return errors


def run(model: Path, chats: int = 100, max_tokens: int = 8) -> dict[str, Any]:
    proc, url = start_ours(model)
    try:
        after_load = rss(proc.pid)
        errors = _chats(url, chats, max_tokens)
        after_chats = rss(proc.pid)
    finally:
        stop(proc)
    peer, _ = start_peer(model)
    try:
        peer_after_load = rss(peer.pid)
    finally:
        stop(peer)
    return {
        "model_file_bytes": model.stat().st_size,
        "ours_after_load": after_load,
        "ours_after_chats": after_chats,
        "chats": chats,
        "chat_errors": errors,
        "growth_bytes": after_chats["VmRSS"] - after_load["VmRSS"],
        "peer_after_load": peer_after_load,
        "ours_load_s": round(proc.ready_s, 2),  # type: ignore[attr-defined]
        "peer_load_s": round(peer.ready_s, 2),  # type: ignore[attr-defined]
        "before_mib": BEFORE_MIB,
    }
