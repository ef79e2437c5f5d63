"""Streaming Markdown (client.markdown.StreamRender): every prefix of an answer, rendered as it
streams, shows exactly what a one-shot render of that prefix shows (math included), and the work
per token does not grow with the answer's length."""

from __future__ import annotations

from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from client import markdown
from client.components.chat_area import PLACEHOLDER, BubbleView, ChatArea, build, view_of
from client.markdown import StreamRender, last_cut
from client.nodes import El
from client.state import Turn
from tests.fakedom import Node

BLOCKS = [
    "# Title\n",
    "Some *text* with `code` and **bold**.\n",
    "A paragraph\nover two lines.\n",
    "- one\n- two\n",
    "- loose\n\n- list\n",
    "1. first\n2. second\n",
    "3) three\n",
    "- item\n\n  continued in the item\n",
    "```python\ndef f(x):\n\n    return x  # a blank line in a fence\n```\n",
    "~~~\nplain ~~~ code\n\n~~~\n",
    "````\n```\nnested\n\n```\n````\n",
    "```\nnever closed\n\nstill code\n",
    "| a | b |\n|:--|--:|\n| 1 | 2 |\n",
    "> quoted\n> text\n",
    "> lazy\ncontinuation\n",
    "    indented code\n\n    more of it\n",
    "---\n",
    "Setext\n===\n",
    "~~gone~~ and [a link](https://example.com)\n",
    "* star\n+ plus\n",
    "   \n",
    "\t\n",
    "    \n",
    # math (client.mathml): inline, displayed, over lines, malformed, currency, inside code
    "Inline $a^2$ and \\(b_1\\), costs $5 and $10.\n",
    "$$\nx = \\frac{1}{2}\n$$\n",
    "\\[\n\\sum_i x_i\n+ y\n\\]\n",
    "Text then\n$$y$$\n",
    "Also \\[z\\] and $$w$$ in a line.\n",
    "$$\nopen\n\nstill open?\n$$\n",
    "\\[\nnever closed\n",
    "bad $\\frac{$ math\n",
    "`$x$` and ```\n$$\n```\n",
    "- $m$\n  $$\n  n\n  $$\n",
    "$$\n~~~\n$$\n",  # LaTeX that looks like a fence: not one
    "- \\[\n  ```\n  \\]\n",
]

answers = st.lists(st.sampled_from(BLOCKS), max_size=10).flatmap(
    lambda blocks: st.lists(st.sampled_from(["\n", "", "\n\n"]), min_size=len(blocks), max_size=len(blocks)).map(
        lambda gaps: "".join(b + g for b, g in zip(blocks, gaps, strict=True))
    )
)


class Bubble:
    """What a bubble shows, updated the way ChatArea updates the DOM."""

    def __init__(self) -> None:
        self.render = StreamRender()
        self.shown: list[El | str] = []
        self.tail = 0
        self.appended = 0  # kept nodes appended without starting over

    def update(self, text: str) -> list[El | str]:
        update = self.render.update(text)
        kept = [] if update.reset else self.shown[: len(self.shown) - self.tail]
        self.appended += 0 if update.reset else len(update.kept)
        self.tail = len(update.tail)
        self.shown = kept + update.kept + update.tail
        return self.shown


@settings(max_examples=300, deadline=None)
@given(answers, st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_streamed_render_equals_one_shot_render_at_every_step(text: str, steps: list[int]) -> None:
    bubble = Bubble()
    end = 0
    for step in [*steps, len(text)]:
        end = min(len(text), end + step)
        assert bubble.update(text[:end]) == markdown.render(text[:end]), repr(text[:end])


def test_finished_blocks_are_kept() -> None:
    bubble = Bubble()
    text = "\n".join(block for block in BLOCKS if "never" not in block) * 2
    for end in range(1, len(text) + 1):
        assert bubble.update(text[:end]) == markdown.render(text[:end]), repr(text[:end])
    assert bubble.appended > 10


def test_a_changed_text_starts_over() -> None:
    render = StreamRender()
    render.update("para one\n\npara two\n\nthree")
    update = render.update("something else\n\nentirely")
    assert update.reset
    assert update.kept + update.tail == markdown.render("something else\n\nentirely")


def test_link_reference_definitions_reach_back() -> None:
    render = StreamRender()
    render.update("see [x]\n\nmore\n\n")
    update = render.update("see [x]\n\nmore\n\n[x]: https://example.com\n")
    assert update.reset
    assert update.kept + update.tail == markdown.render("see [x]\n\nmore\n\n[x]: https://example.com\n")


def test_cuts() -> None:
    assert last_cut("a\n\nb\n") == 3
    assert last_cut("a\n\nb") == 0  # the next line is not whole yet
    assert last_cut("- a\n\n- b\n") == 0  # a later item makes the list loose
    assert last_cut("- a\n\n  b\n") == 0
    assert last_cut("```\na\n\nb\n```\n\nc\n") == 14
    assert last_cut("```\na\n\nb\n") == 0
    assert last_cut("$$\n```\n$$\n\nc\n") == 11  # displayed math holds LaTeX, not a fence
    assert last_cut("a\n\n\\[\nx\n") == 3  # math still open: nothing after it can be cut yet
    assert last_cut("$$\n```\n\nc\n") == 0  # a blank line: not math, so that was a fence


def long_answer(tokens: int) -> list[str]:
    """A Markdown answer of roughly `tokens` tokens of 4 characters, mixed blocks."""
    unit = (
        "## Part\n\nSome *text* with `code`, and more words in it.\n\n"
        "- a point\n- another point\n\n"
        "```python\nprint('hi')\n\nx = 1\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    )
    text = unit * (tokens * 4 // len(unit) + 1)
    return [text[i : i + 4] for i in range(0, tokens * 4, 4)]


def test_work_per_token_does_not_grow_with_length() -> None:
    render = StreamRender()
    text = ""
    per_token: list[int] = []
    for token in long_answer(4000):
        before = render.parsed
        text += token
        render.update(text)
        per_token.append(render.parsed - before)
    start, end = sum(per_token[:500]) / 500, sum(per_token[-500:]) / 500
    assert end <= 1.5 * start, (start, end)
    assert render.parsed < 60 * len(text)  # a whole re-parse every token would be ~2000x


def test_a_streaming_bubble_shows_the_one_shot_render_and_builds_only_the_tail() -> None:
    area = object.__new__(ChatArea)
    area._streams = {}
    document, bubble = Node(), Node("div")
    tokens = long_answer(1000)
    text, view = "", cast(BubbleView | None, None)
    for token in tokens:
        text += token
        view, old = view_of(Turn(user=False, text=text, status="streaming"), rich=True), view
        area._show_markdown(document, bubble, view, old, 1)
        expected = Node("div")
        build(Node(), expected, markdown.render(text))
        assert bubble.dump() == expected.dump()
    streamed = document.built
    area._show_markdown(document, bubble, view_of(Turn(user=False, text=text, status="done"), rich=True), view, 1)
    assert bubble.dump() == expected.dump()
    whole = document.built - streamed  # one full build
    assert streamed < 25 * whole  # a full rebuild per token would be ~1000x
    assert area._streams == {}


def test_a_bubble_that_showed_something_else_starts_over() -> None:
    area = object.__new__(ChatArea)
    area._streams = {}
    document, bubble = Node(), Node("div")
    first = view_of(Turn(user=False, text="a\n\nb\n\nc", status="streaming"), rich=True)
    area._show_markdown(document, bubble, first, None, 0)
    error = view_of(Turn(user=False, text="boom", status="error"), rich=True)
    bubble.replaceChildren()
    bubble.append(document.createTextNode("boom"))  # what ChatArea shows for an error (plain text)
    again = view_of(Turn(user=False, text="a\n\nb\n\nc d", status="streaming"), rich=True)
    area._show_markdown(document, bubble, again, error, 0)
    expected = Node("div")
    build(Node(), expected, markdown.render("a\n\nb\n\nc d"))
    assert bubble.dump() == expected.dump()


def test_a_prompt_being_read_replaces_the_placeholder_with_its_count() -> None:
    reading = view_of(Turn(user=False, text="", status="pending", reading=(1536, 3412)), last=True, busy=True)
    assert reading.text == "Reading the conversation… 1,536 / 3,412 tokens" and reading.reading == (1536, 3412)
    waiting = view_of(Turn(user=False, text="", status="pending"), last=True, busy=True)
    assert waiting.text == PLACEHOLDER and waiting.reading is None
    streaming = view_of(Turn(user=False, text="Hi", status="streaming", reading=(1, 2)), last=True, busy=True)
    assert streaming.text == "Hi" and streaming.reading is None
