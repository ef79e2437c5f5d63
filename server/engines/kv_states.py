"""Saved KV states of recent conversations, so users taking turns do not evict each other.

llama.cpp keeps one KV cache: on its own, two users alternating would each re-evaluate their
whole history every turn. After each answer we copy the sequence's KV state (no logits, so a
few KB per token) into a small LRU keyed by the tokens it holds; a prompt that extends a saved
state further than the live cache does gets that state restored first.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import llama_cpp

Tokens = tuple[int, ...]


def common_prefix(a: Iterable[int], b: Iterable[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class SavedStates:
    def __init__(self, max_states: int = 8, max_bytes: int = 512 << 20) -> None:
        self.max_states = max_states
        self.max_bytes = max_bytes
        self._states: OrderedDict[Tokens, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def best_match(self, tokens: Sequence[int]) -> tuple[Tokens, int]:
        """The saved state sharing the longest start with `tokens`, and how long that start is.

        A saved state usually runs past the shared start (it ends in the tokens the model made
        before it was stopped); llama-cpp-python drops that tail itself when it evaluates.
        """
        best: Tokens = ()
        best_len = 0
        for key in self._states:
            n = common_prefix(key, tokens)
            if n > best_len:
                best, best_len = key, n
        return best, min(best_len, len(tokens) - 1)  # the last token is always evaluated

    def save(self, llama: Any) -> None:
        key = tuple(int(t) for t in llama.input_ids[: llama.n_tokens])
        if not key:
            return
        ctx = llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        if written > self.max_bytes:
            return
        # a state that extends an older one of the same conversation replaces it
        for old in [k for k in self._states if key[: len(k)] == k]:
            del self._states[old]
        self._states[key] = bytes(buffer[:written])
        while len(self._states) > self.max_states or sum(map(len, self._states.values())) > self.max_bytes:
            self._states.popitem(last=False)

    def restore(self, llama: Any, key: Tokens) -> bool:
        data = self._states[key]
        self._states.move_to_end(key)
        ctx = llama._ctx.ctx
        llama._ctx.kv_cache_seq_rm(0, 0, -1)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(data), 0) == 0:
            llama.n_tokens = 0  # nothing usable in the cache now: evaluate from scratch
            return False
        llama.input_ids[: len(key)] = key
        llama.n_tokens = len(key)
        return True
