"""The message being written, against the limits it will meet: its live token count near the end
of the context, the paste long enough to be a file, and the note for Enter while an answer streams.
Pure Python, no DOM.

The draft is counted by the server (`POST /api/tokens`), as an attached file is, and measured by the
same rule (client.attachments.check_fits_context): there is one way of counting, not an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from client.attachments import Refused, check_fits_context
from wire.types import TokenCount

NEAR = 0.75  # the count shows once the chat and the draft fill this much of the prompt's room
DEBOUNCE_S = 0.4  # the draft is counted once typing pauses this long, not at every key
LONG_PASTE = 5_000  # characters: a paste longer than this is offered as a file instead
WAIT = "Wait for the answer, or Stop it"  # Enter while an answer streams: the text stays in the box
COUNTING = "Counting this message's tokens…"  # Enter on a long draft not counted yet: it goes once counted
PASTE_NAME = "pasted.txt"


@dataclass(frozen=True)
class DraftCount:
    """The server's count of the draft `text`, and the answer budget the chat keeps (`answer`)."""

    text: str
    count: TokenCount
    answer: int

    @property
    def room(self) -> int:
        """The prompt's room: the context less the answer's budget."""
        return self.count.n_ctx - self.answer


@dataclass(frozen=True)
class CountLine:
    """The line by the message box: empty while far from the limit; `over`: the message cannot fit."""

    text: str = ""
    over: bool = False


def count_line(draft: DraftCount | None, chat_used: int, attached: int) -> CountLine:
    """What the box says of its draft, with the chat so far (`chat_used`: its last prompt and answer,
    as the context gauge shows) and the tokens of the files attached (`attached`)."""
    if draft is None:
        return CountLine()
    why = refusal(draft, draft.text, attached)
    if why:
        return CountLine(why, over=True)
    own = draft.count.tokens + attached
    total = max(chat_used, draft.count.overhead) + own
    if total < NEAR * draft.room:
        return CountLine()
    said = f"{own:,} tokens · with the chat {total:,} of {draft.room:,}"
    return CountLine(said + (": the oldest messages will be left out" if total > draft.room else ""))


def refusal(draft: DraftCount | None, text: str, attached: int) -> str:
    """Why a message of `text` cannot fit the model, by the draft's count when it is of this text; ""
    when it fits or its count is not known yet (the server then says so, in plain words)."""
    if draft is None or draft.text != text:
        return ""
    try:
        check_fits_context("this message", draft.count, attached, draft.answer)
    except Refused as exc:
        return f"Too long to send: {exc}"
    return ""


def may_not_fit(known: DraftCount | None, text: str, attached: int) -> bool:
    """Whether `text` could be too long for the model by the limits of the last count (`known`):
    a token covers at least a byte of UTF-8, so a text of fewer bytes than the room left fits
    whatever its count. With no count known yet, the server is left to say."""
    if known is None:
        return False
    return known.count.overhead + len(text.encode()) + attached + known.answer > known.count.n_ctx


def long_paste(text: str) -> bool:
    """Whether a paste is long enough to be offered as a file."""
    return len(text) > LONG_PASTE


def paste_name(taken: set[str]) -> str:
    """A name for a paste attached as a file, unlike those of the files attached already."""
    n = 1
    while (name := PASTE_NAME if n == 1 else f"pasted-{n}.txt") in taken:
        n += 1
    return name
