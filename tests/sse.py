"""Read an SSE response from /api/converse the way any HTTP client would (from `tests.harness`)."""

from __future__ import annotations

from tests.harness import chat, converse, iter_sse, read_events

__all__ = ["chat", "converse", "iter_sse", "read_events"]
