"""What a file attached to a message may be, and how it reaches the model (client.attachments)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.attachments import (
    MAX_FILE_BYTES,
    Attachment,
    Refused,
    check_fits_context,
    check_fits_message,
    check_size,
    compose,
    fenced,
    language_of,
    not_counted,
    read,
)
from wire.types import MAX_TEXT, TokenCount


def test_utf8_text_is_read_without_its_byte_order_mark() -> None:
    assert read("notes.md", "# Café ☕\n".encode()) == Attachment("notes.md", "# Café ☕\n")
    assert read("bom.txt", b"\xef\xbb\xbfhello").text == "hello"
    assert read("empty.txt", b"").text == ""


@pytest.mark.parametrize(
    "data",
    [bytes.fromhex("89504e470d0a1a0a0000000d49484452"), b"text\x00with a NUL", b"latin-1 caf\xe9", b"\xff\xfe\x00h"],
    ids=["png", "nul", "not-utf8", "utf16"],
)
def test_a_binary_file_is_refused_in_one_line(data: bytes) -> None:
    with pytest.raises(Refused, match=r"^photo\.png is not a text file$"):
        read("photo.png", data)


def test_a_file_too_big_for_any_message_is_refused_before_it_is_read() -> None:
    check_size("ok.txt", MAX_FILE_BYTES)
    with pytest.raises(Refused, match=r"^huge\.log is too big: 400,001 bytes; a message holds 100,000 characters$"):
        check_size("huge.log", MAX_FILE_BYTES + 1)
    with pytest.raises(Refused, match="too big"):
        read("huge.log", b"a" * (MAX_FILE_BYTES + 1))


def test_a_name_is_one_line() -> None:
    assert read("a\nb\tc.txt", b"x").name == "a b c.txt"
    assert read("\n", b"x").name == "file"


def test_the_fence_names_the_file_and_its_language() -> None:
    assert fenced(Attachment("greet.py", "print(1)\n")) == "File: greet.py\n```python\nprint(1)\n```"
    assert fenced(Attachment("data.CSV", "a,b")) == "File: data.CSV\n```csv\na,b\n```"
    assert fenced(Attachment("notes.txt", "")) == "File: notes.txt\n```\n```"
    assert (language_of("x.json"), language_of("Makefile"), language_of("x.unknown")) == ("json", "", "")


@given(st.text(alphabet="`a\n", max_size=40))
def test_no_text_can_close_its_fence(text: str) -> None:
    block = fenced(Attachment("f.md", text))
    fence = re.match(r"File: f\.md\n(`+)markdown\n", block)
    assert fence is not None
    assert block.endswith("\n" + fence.group(1))
    inner = block[fence.end() : -len(fence.group(1))]
    assert inner.rstrip("\n") == text.rstrip("\n")
    assert all(len(run) < len(fence.group(1)) for run in re.findall("`+", inner))


def test_a_message_is_its_files_then_what_was_typed() -> None:
    a, b = Attachment("a.txt", "A\n"), Attachment("b.md", "B")
    assert compose("Compare them.", [a, b]) == (
        "File: a.txt\n```\nA\n```\n\nFile: b.md\n```markdown\nB\n```\n\nCompare them."
    )
    assert compose("  ", [a]) == "File: a.txt\n```\nA\n```"
    assert compose("just text", []) == "just text"


def test_files_over_a_message_s_bound_together_are_refused() -> None:
    half = Attachment("half.txt", "x" * (MAX_TEXT // 2))
    check_fits_message(half, [])
    with pytest.raises(Refused, match=r"^half\.txt is too big: 50,000 characters with the other files; .* 100,000$"):
        check_fits_message(half, [half])
    with pytest.raises(Refused, match=r"^all\.txt is too big: 100,000 characters; a message"):
        check_fits_message(Attachment("all.txt", "x" * MAX_TEXT), [])
    with pytest.raises(Refused, match=r"^half\.txt is too big: 50,000 characters and the text typed; "):
        check_fits_message(half, [], typed="t" * (MAX_TEXT // 2))  # the typed text goes in the message too


def test_a_file_that_cannot_fit_the_context_is_refused_with_its_count() -> None:
    count = TokenCount(model="m.gguf", tokens=9_912, overhead=20, n_ctx=2_048, max_tokens=512)
    with pytest.raises(Refused) as refused:
        check_fits_context("big.txt", count, used=0, answer=256)
    expected = "big.txt is 9,912 tokens; this chat's model takes 2,048, 256 of them kept for the answer"
    assert str(refused.value) == expected
    fits = TokenCount(model="m.gguf", tokens=400, overhead=20, n_ctx=512, max_tokens=512)
    check_fits_context("ok.txt", fits, used=0, answer=92)  # 20 + 400 + 92 = 512: just fits
    with pytest.raises(Refused, match="^ok.txt is 400 tokens; .*, 93 of them kept for the answer$"):
        check_fits_context("ok.txt", fits, used=0, answer=93)
    with pytest.raises(Refused, match="kept for the answer and 1 used by the other files$"):
        check_fits_context("ok.txt", fits, used=1, answer=92)


def test_a_file_not_counted_says_why() -> None:
    assert not_counted("a.py", "Cannot reach the server") == (
        "a.py was not attached: its tokens could not be counted (Cannot reach the server)"
    )
