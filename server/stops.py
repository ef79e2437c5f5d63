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
            return buffer[: min(hits)].rstrip()
        cut = self._hold_from(buffer)
        self._held = buffer[cut:]
        return buffer[:cut]

    def _hold_from(self, buffer: str) -> int:
        cut = len(buffer)
        for k in range(min(len(buffer), max(map(len, self.markers)) - 1), 0, -1):
            if any(m.startswith(buffer[-k:]) for m in self.markers):
                cut = len(buffer) - k
                break
        while cut > 0 and buffer[cut - 1].isspace():
            cut -= 1
        return cut
