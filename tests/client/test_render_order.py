"""Which rows of a chat render at once and which after (client.render_order)."""

from __future__ import annotations

from client.render_order import FIRST_ROWS, MANY, split


def test_a_small_change_renders_at_once_wherever_it_is() -> None:
    assert split([0], 120, switched=False) == ([0], [])  # a version switched on the first message
    assert split([119], 120, switched=False) == ([119], [])  # a streamed token
    few = list(range(MANY))
    assert split(few, 120, switched=False) == (few, [])


def test_a_big_change_renders_the_last_rows_first_and_the_rest_after() -> None:
    every = list(range(120))
    now, later = split(every, 120, switched=False)  # Markdown arrived: every answer changes
    assert now == every[-FIRST_ROWS:] and later == every[:-FIRST_ROWS]


def test_another_chat_renders_from_its_end_even_when_few_rows_changed() -> None:
    assert split([3, 119], 120, switched=True) == ([119], [3])
    assert split(list(range(10)), 10, switched=True) == (list(range(10)), [])  # all of it is the end


def test_nothing_changed_is_nothing_to_do() -> None:
    assert split([], 120, switched=True) == ([], [])
