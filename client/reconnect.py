"""When the server cannot be reached: when to look again.

The page asks `/health` after 1 s, then 2, 4, 8, 16, and every 30 s from then on, so a server
that restarts at once is seen at once and one that stays down costs a request every half minute.
"""

from __future__ import annotations

from collections.abc import Iterator

FIRST_S = 1.0
LONGEST_S = 30.0


def backoff() -> Iterator[float]:
    """The seconds to wait before each look, without end."""
    delay = FIRST_S
    while True:
        yield delay
        delay = min(delay * 2, LONGEST_S)
