"""Stop at a role marker without ever showing it, however the tokenizer splits the text.

Text that might be the start of a marker is held back until it is either completed (and
dropped with everything after it) or proven harmless (and released). Whitespace right before
a possible marker is held too, so an answer never ends in the newline that led to the marker.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopFilter:
    def __init__(self, markers: Sequence[str]) -> None:
        self.markers = tuple(markers)
        self.stopped = False
        self.matched: str | None = None  # the marker that stopped the text
        self._held = ""
        self._started = False  # leading whitespace of the answer is dropped

    def feed(self, text: str) -> str:
        """Take the next piece of model output; return the text now safe to show."""
        if self.stopped:
            return ""
        buffer = self._held + text
        if not self._started:
            buffer = buffer.lstrip()
            self._started = bool(buffer)
        hits = [i for i in (buffer.find(m) for m in self.markers) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            at = min(hits)
            self.matched = next(m for m in self.markers if buffer.find(m) == at)
            return buffer[:at].rstrip()
        cut = held_from(buffer, self.markers)
        self._held = buffer[cut:]
        return buffer[:cut]


def held_from(buffer: str, markers: Sequence[str]) -> int:
    """Where the text that must wait starts: a possible start of a marker at the end of
    `buffer`, and the whitespace before it (the think splitter holds its tags the same way)."""
    cut = len(buffer)
    for k in range(min(len(buffer), max(map(len, markers), default=1) - 1), 0, -1):
        if any(m.startswith(buffer[-k:]) for m in markers):
            cut = len(buffer) - k
            break
    while cut > 0 and buffer[cut - 1].isspace():
        cut -= 1
    return cut
