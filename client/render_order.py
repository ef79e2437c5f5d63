"""Which rows of a chat to render now and which later: what is on screen first.

A chat's last messages are what the reader sees on opening it (the view starts at the bottom),
so when many rows change at once (another chat opened, the Markdown renderer arrived, a long
chat loaded at start-up) only the last `FIRST_ROWS` are rendered at once (and, in the open chat,
those in the view: client.components.chat_area), and the older ones follow in short browser
tasks, newest first. A small change (a
streamed token, a version switched) is rendered at once wherever it is: the reader is looking
at it. Of those last rows, only as many as fill the view (`SCREENS` of its height) go at once:
one long answer can fill it alone.
"""

from __future__ import annotations

FIRST_ROWS = 16  # rendered at once at most: a screenful of short messages, more of long ones
SCREENS = 1.25  # ... and no more than fill this many heights of the view, from the bottom
MANY = 8  # more changed rows than this is a big change, rendered from the end
SLICE_S = 0.012  # the older rows go in browser tasks of about this long


def split(changed: list[int], count: int, switched: bool) -> tuple[list[int], list[int]]:
    """`changed`: the rows (ascending) whose view changed, of `count`; `switched`: another chat.

    Returns (now, later): the rows to render at once, and those to render after, ascending (the
    caller takes them from the end, so the newest go first).
    """
    if not switched and len(changed) <= MANY:
        return changed, []
    first = count - FIRST_ROWS
    return [i for i in changed if i >= first], [i for i in changed if i < first]
