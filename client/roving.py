"""Arrow keys within a group of controls (a list of chats, a menu): which one is next. Pure.

The group is one Tab stop; these keys move focus inside it, as ARIA's authoring practices
describe for lists and menus.
"""

from __future__ import annotations

STEPS = {"ArrowDown": 1, "ArrowUp": -1}


def step(key: str, index: int, count: int, wrap: bool = False) -> int | None:
    """The index focus moves to from `index` (of `count`) on `key`; None: the key is not ours.

    A menu wraps around at either end; a list stops there.
    """
    if count <= 0:
        return None
    if key == "Home":
        return 0
    if key == "End":
        return count - 1
    if key not in STEPS:
        return None
    moved = index + STEPS[key]
    if wrap:
        return moved % count
    return min(max(moved, 0), count - 1)
