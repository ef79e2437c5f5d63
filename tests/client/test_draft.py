"""The message box's limits, without a browser: the live count's line, the refusal of a message
that cannot fit (by the same rule as a file's), a long paste, the name a pasted file gets, and
which sent messages fold."""

from __future__ import annotations

from client.components.chat_area import FOLD_CHARS, FOLD_LINES, folds, view_of
from client.draft import LONG_PASTE, CountLine, DraftCount, count_line, long_paste, may_not_fit, paste_name, refusal
from client.state import Turn
from wire.types import TokenCount


def counted(text: str, tokens: int, n_ctx: int = 1000, answer: int = 200, overhead: int = 10) -> DraftCount:
    return DraftCount(text, TokenCount("m.gguf", tokens, overhead, n_ctx, 512), answer)


def test_the_count_shows_only_near_the_prompt_s_room() -> None:
    # Room: 1000 - 200 = 800; 75% of it is 600.
    assert count_line(None, 500, 0) == CountLine()
    assert count_line(counted("hi", 5), 100, 0) == CountLine()
    assert count_line(counted("hi", 100), 499, 0) == CountLine()  # 599 of 800
    assert count_line(counted("hi", 100), 500, 0) == CountLine("100 tokens · with the chat 600 of 800")
    # Files attached count with the text; a new chat counts its template and system prompt.
    assert count_line(counted("hi", 500, overhead=50), 0, 60) == CountLine("560 tokens · with the chat 610 of 800")


def test_past_the_room_the_oldest_messages_go_and_a_message_alone_too_big_is_refused() -> None:
    assert count_line(counted("hi", 300), 700, 0) == CountLine(
        "300 tokens · with the chat 1,000 of 800: the oldest messages will be left out"
    )
    line = count_line(counted("hi", 800), 0, 0)  # 10 + 800 + 200 > 1000
    assert line.over
    assert line.text == (
        "Too long to send: this message is 800 tokens; this chat's model takes 1,000, 200 of them kept for the answer"
    )


def test_a_refusal_needs_a_count_of_the_very_text() -> None:
    big = counted("long text", 900)
    assert refusal(big, "long text", 0).startswith("Too long to send: this message is 900 tokens")
    assert refusal(big, "long text, edited", 0) == ""  # not counted yet: the server says, if need be
    assert refusal(None, "anything", 0) == ""
    assert refusal(counted("fits", 500), "fits", 0) == ""
    assert "and 300 used by the other files" in refusal(counted("fits", 500), "fits", 300)


def test_a_long_paste_and_its_name() -> None:
    assert not long_paste("x" * LONG_PASTE)
    assert long_paste("x" * (LONG_PASTE + 1))
    assert paste_name(set()) == "pasted.txt"
    assert paste_name({"pasted.txt", "notes.md"}) == "pasted-2.txt"
    assert paste_name({"pasted.txt", "pasted-2.txt"}) == "pasted-3.txt"


def test_long_sent_messages_fold_and_keep_their_whole_text() -> None:
    assert not folds("short")
    assert not folds("\n".join(["line"] * FOLD_LINES))  # FOLD_LINES lines: shown whole
    assert folds("\n".join(["line"] * (FOLD_LINES + 1)))
    assert folds("x" * (FOLD_CHARS + 1))
    text = "\n".join(f"line {n}" for n in range(50))
    view = view_of(Turn(user=True, text=text, status="done"))
    assert view.long and view.text == text
    assert not view_of(Turn(user=False, text=text, status="done")).long  # answers are read, not folded


def test_a_text_of_fewer_bytes_than_the_room_fits_whatever_its_count() -> None:
    known = counted("earlier", 5)  # 1000 tokens, 10 of overhead, 200 for the answer: 790 left
    assert not may_not_fit(None, "z" * 5000, 0)
    assert not may_not_fit(known, "z" * 790, 0)
    assert may_not_fit(known, "z" * 791, 0)
    assert may_not_fit(known, "z" * 700, 91)  # with the files attached
