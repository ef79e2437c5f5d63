"""How long ago a chat was last sent in, as the sidebar's date sections: pure, no clock of its own.

Days are calendar days where the user is (the caller turns timestamps into local dates), so a
chat from 23:50 is "Yesterday" ten minutes later.
"""

from __future__ import annotations

from datetime import date

TODAY = "Today"
YESTERDAY = "Yesterday"
WEEK = "Previous 7 days"
OLDER = "Older"
SECTIONS = (TODAY, YESTERDAY, WEEK, OLDER)  # in the order the sidebar lists them


def section_of(day: date | None, today: date) -> str:
    """The section of a chat last sent in on `day` (None: never recorded, as in older exports)."""
    if day is None:
        return OLDER
    ago = (today - day).days
    if ago <= 0:  # a clock set back since: still the newest
        return TODAY
    if ago == 1:
        return YESTERDAY
    return WEEK if ago <= 7 else OLDER
