"""LaTeX math in answers as MathML, safely: `$…$` and `\\(…\\)` inline, `$$…$$` and `\\[…\\]` displayed.

Parsing: `use` adds rules to the Markdown parser (client.markdown). Inline dollars are
mdit-py-plugins' dollarmath rule, set so currency stays text ("$5 and $10": no space after the
opening `$` nor before the closing one, no digit right after the closing one); inline brackets
and display blocks are ours. Inline rules run before the backslash escape that would otherwise
eat `\\(`. Code stays code: a code span is taken whole where its backticks start, and fenced
or indented code is never looked into. A blank line ends a math attempt, as it does in LaTeX
(and on GitHub): math never spans one, so the streaming renderer's cuts, which follow blank
lines, never fall inside it.

Converting: latex2mathml builds an ElementTree, which `node` walks into `El` nodes with only
the tags in TAGS and the attributes in ATTRS (values that are lengths, colours or keywords,
never a URL), text always as text; client.components.chat_area builds them with
createElementNS. No XML or HTML string is made or parsed. LaTeX the converter rejects, and all
math while the converter is not loaded, shows as its source text (client.markdown).

The converter's wheel is loaded after the parser's (`load`), after the page is ready.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from client.nodes import El

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from markdown_it import MarkdownIt
    from markdown_it.ruler import RuleOptionsType
    from markdown_it.rules_block import StateBlock
    from markdown_it.rules_inline import StateInline

NS = "http://www.w3.org/1998/Math/MathML"
# Loaded by `load`; scripts/vendor.py downloads the same files.
WHEELS = ("/static/wheels/latex2mathml-3.81.1-py3-none-any.whl",)
# The converter's modules, leaves first, so that importing them goes in short slices.
CONVERTER_IMPORTS = (
    "importlib.metadata", "latex2mathml", "latex2mathml.exceptions", "latex2mathml.symbols_parser",
    "latex2mathml.commands", "latex2mathml.tokenizer", "latex2mathml.walker", "latex2mathml.converter",
)
Step = Callable[[], Awaitable[None]]  # awaited before each step of a `load`

# What latex2mathml makes (MathML Core plus menclose); anything else becomes an mrow.
_TAG_NAMES = (
    "math mrow mi mn mo ms mtext mspace mfrac msqrt mroot msub msup msubsup munder mover munderover "
    "mmultiscripts mprescripts mtable mtr mtd mstyle mpadded mphantom menclose merror"
)
TAGS = frozenset(_TAG_NAMES.split())
_ATTR_NAMES = (
    "display displaystyle scriptlevel mathvariant mathsize mathcolor mathbackground fence separator stretchy "
    "symmetric largeop movablelimits accent accentunder form lspace rspace minsize maxsize width height depth "
    "voffset linethickness linebreak columnalign rowalign columnlines rowlines columnspacing rowspacing frame notation"
)
ATTRS = frozenset(_ATTR_NAMES.split())
SAFE_VALUE = re.compile(r"[\w#.,%+\- ]*")  # no quote, colon, parenthesis or slash: never a URL
_CHAR_REF = re.compile(r"&#x([0-9a-fA-F]{1,6});")  # latex2mathml writes symbols as references

# Token types the rules push, and the closing delimiter of each opening one (`markup`).
TOKENS = frozenset(["math_inline", "math_inline_double", "math_block"])
CLOSE = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}


def use(md: MarkdownIt) -> MarkdownIt:
    """Add the math rules to `md` (the token types are TOKENS)."""
    from mdit_py_plugins.dollarmath.index import math_inline_dollar

    md.inline.ruler.before("escape", "math_inline", math_inline_dollar(False, False, True))
    md.inline.ruler.before("escape", "math_bracket", _bracket_inline)
    # Like a fence, display math may end the paragraph, list or quote above it without a blank line.
    alt: RuleOptionsType = {"alt": ["paragraph", "reference", "blockquote", "list"]}
    md.block.ruler.before("fence", "math_block", _block("$$"), alt)
    md.block.ruler.before("fence", "math_bracket_block", _block("\\["), alt)
    return md


def _bracket_inline(state: StateInline, silent: bool) -> bool:
    """`\\(…\\)` inline, `\\[…\\]` displayed, inside a paragraph."""
    src, pos = state.src, state.pos
    opening = src[pos : pos + 2]
    if opening not in ("\\(", "\\["):
        return False
    end = src.find(CLOSE[opening], pos + 2)
    if end < 0 or not src[pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push("math_inline" if opening == "\\(" else "math_inline_double", "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = opening
    state.pos = end + 2
    return True


# A line that may open a display block, after any list or quote markers (client.markdown.last_cut).
BLOCK_OPEN = re.compile(r"(?:[ \t]*(?:[-+*]|\d{1,9}[.)]|>)(?=[ \t]|$))* {0,3}(\$\$|\\\[)")


def display_block(lines: Iterable[str], closing: str) -> tuple[int, str]:
    """Where a display block ends: `lines` are the rest of its opening line, then the lines after.

    (lines it spans, its LaTeX) when closed: the first line ending in `closing`; (0, "") when it
    is none (a blank line or a `closing` inside a line comes first, or it is empty); (-1, "")
    when `lines` run out first. The block rule and the streaming cuts both ask this.
    """
    taken: list[str] = []
    for count, text in enumerate(lines, 1):
        body = text.strip()
        if count > 1 and not body:
            return 0, ""
        closed = body.endswith(closing)
        if closing in (body[: -len(closing)] if closed else body):
            return 0, ""  # closed inside a line: the inline rule's case
        if closed:
            taken.append(text.rstrip()[: -len(closing)])
            content = "\n".join(taken)
            return (count, content) if content.strip() else (0, "")
        taken.append(text)
    return -1, ""


def _block(opening: str) -> Callable[[StateBlock, int, int, bool], bool]:
    """The block rule for display math opened by `opening` at the start of a block (see
    display_block). dollarmath's own cannot end a paragraph: asked silently whether it would,
    it pushes its token anyway."""
    closing = CLOSE[opening]

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if state.is_code_block(start):
            return False
        begin = state.bMarks[start] + state.tShift[start]
        if not state.src.startswith(opening, begin):
            return False
        first = state.src[begin + len(opening) : state.eMarks[start]]
        after = (state.src[state.bMarks[n] + state.tShift[n] : state.eMarks[n]] for n in range(start + 1, end))
        count, content = display_block(itertools.chain([first], after), closing)
        if count <= 0:
            return False
        if not silent:
            token = state.push("math_block", "math", 0)
            token.block = True
            token.content = content
            token.markup = opening
            token.map = [start, start + count]
            state.line = start + count
        return True

    return rule


async def load(step: Step) -> bool:
    """Browser only: load the converter's wheel and warm it up; False (math stays source) if that fails.

    `step()` is awaited before each step, as in client.markdown.load.
    """
    from client.boot import import_sliced
    from client.browser import load_wheels

    try:
        await step()
        await load_wheels(WHEELS)
        await step()
        await import_sliced(CONVERTER_IMPORTS)
        await step()
    except Exception as exc:
        print(f"Math unavailable: {exc!r}")
        return False
    node.cache_clear()  # forget anything rendered before the converter was there
    return node("x^2", False) is not None


@lru_cache(maxsize=512)
def node(latex: str, display: bool) -> El | None:
    """`latex` as a whitelisted <math> tree, or None: the converter rejects it or is not loaded.

    Cached: a streamed answer re-renders its open block on every token. Callers only read it.
    """
    try:
        from latex2mathml.converter import convert_to_element
    except ImportError:
        return None
    try:
        tree = convert_to_element(latex, display="block" if display else "inline")
    except Exception:  # malformed LaTeX raises many kinds; it shows as its source instead
        return None
    return element(tree)


def element(tree: Element) -> El:
    """An ElementTree of MathML -> El, keeping only TAGS, ATTRS with safe values, and text."""
    tag = tree.tag if tree.tag in TAGS else "mrow"
    attrs = {k: v for k, v in tree.attrib.items() if k in ATTRS and SAFE_VALUE.fullmatch(v)}
    children: list[El | str] = [_text(tree.text)] if tree.text else []
    for child in tree:
        children.append(element(child))
        if child.tail:
            children.append(_text(child.tail))
    return El(tag, attrs, children)


def _text(text: str) -> str:
    return _CHAR_REF.sub(_char, text)


def _char(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return "\ufffd" if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else chr(code)
