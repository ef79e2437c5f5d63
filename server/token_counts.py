"""Token counts of a chat's turns, remembered from one request of the chat to the next.

Fitting a chat that outgrew its context counts each of its turns apart (server.context); the
chat's next request holds the same turns again, and counting them anew would cost a render per
turn on every turn. A count is keyed by a digest of the messages and the system prompt, so no
chat text is held here, and the least recently used counts go first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import msgspec

from server.engines.base import Prompt
from wire.types import Message

Render = Callable[[Sequence[Message], str | None], Prompt]
Count = Callable[[Sequence[Message], str | None], int]

SIZE = 8192  # counts kept: a turn or two each, for the last several hundred turns of all chats


class TokenCounts:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()  # chats are fitted on worker threads, several at once

    def count(self, render: Render, messages: Sequence[Message], system: str | None) -> int:
        """The tokens of `render(messages, system)`, or what they were last time for the same
        messages and system (`render` stands for one engine: one `TokenCounts` per engine)."""
        key = hashlib.blake2b(msgspec.msgpack.encode([system, list(messages)]), digest_size=16).digest()
        with self._lock:
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key]
        n = render(messages, system).n_tokens
        with self._lock:
            self._counts[key] = n
            while len(self._counts) > self.size:
                self._counts.popitem(last=False)
        return n
