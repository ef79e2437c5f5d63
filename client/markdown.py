"""Model answers as Markdown, safely: a tree of whitelisted elements and plain text, never HTML.

markdown-it-py parses (CommonMark + tables + strikethrough, raw HTML *off*), and instead of its
HTML renderer we walk its token stream into `El` nodes: only the tags in TAGS, only the
attributes we set ourselves, text always as text. The DOM is then built with createElement and
textContent (client.components.chat_area), so there is no HTML string anywhere for a payload to
hide in. Links keep only http(s), mailto and relative targets; images show their alt text (an
answer cannot make the page fetch anything). LaTeX math becomes MathML (client.mathml).

The parser's wheels are loaded after the page is ready (they cost import time), step by step with
the browser free between steps (`load`); until then, and on CPython without it, `render` is not
used and answers show as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from client import mathml, sandbox
from client.highlight import highlight
from client.mathml import Step
from client.nodes import El

# Loaded by `load` after the page is ready (client.main), the parser's and then the math
# converter's: every wheel the page loads late, the list scripts/vendor.py downloads.
PARSER_WHEELS = (
    "/static/wheels/mdurl-0.1.2-py3-none-any.whl",
    "/static/wheels/markdown_it_py-4.3.0-py3-none-any.whl",
    "/static/wheels/mdit_py_plugins-0.7.0-py3-none-any.whl",
)
# What the parser imports from the standard library and mdurl, taken in before it in short slices
# (client.boot.import_sliced): importing markdown_it itself is one step, as its package imports all of it.
PARSER_IMPORTS = ("html.entities", "html", "urllib.parse", "mdurl")
WHEELS = PARSER_WHEELS + mathml.WHEELS
_TAG_NAMES = "p h1 h2 h3 h4 h5 h6 ul ol li blockquote pre code em strong s a table thead tbody tr th td hr br div span"
# "button", "details" and "summary": our own blocks (code, tool calls), never from Markdown itself
TAGS = frozenset([*_TAG_NAMES.split(), "button", "details", "summary"])
SAFE_URL = re.compile(r"^(?:https?://|mailto:|/(?!/)|#|\.{1,2}/|[^:/?#]+(?:[/?#]|$))", re.IGNORECASE)
ALIGN = {"left": "text-left", "center": "text-center", "right": "text-right"}

# Full class strings so Tailwind's scanner finds them here.
CODE_BLOCK = "code-block my-2 overflow-hidden rounded-lg border border-gray-300 dark:border-gray-700"
CODE_HEAD = (
    "flex items-center justify-between bg-gray-300 px-3 py-1 text-xs text-gray-800 dark:bg-gray-700 dark:text-gray-100"
)
CODE_COPY = (
    "rounded px-2 py-0.5 hover:bg-gray-400 focus-visible:outline-2 focus-visible:outline-blue-600 "
    "dark:hover:bg-gray-600"
)
# The Run button as the Markdown makes it; client.components.code_runner flips it to Stop and back.
RUN_LABEL = "Run"
RUN = {"data-action": "run-code", "aria-label": "Run code"}
PRE = "overflow-x-auto bg-gray-50 p-3 text-sm leading-snug text-gray-900 dark:bg-gray-900 dark:text-gray-100"
CLASSES = {
    "p": "my-2 first:mt-0 last:mb-0",
    "h1": "mt-3 mb-2 text-xl font-bold",
    "h2": "mt-3 mb-2 text-lg font-bold",
    "h3": "mt-3 mb-1 font-bold",
    "h4": "mt-2 mb-1 font-semibold",
    "h5": "mt-2 mb-1 font-semibold",
    "h6": "mt-2 mb-1 font-semibold",
    "ul": "my-2 list-disc pl-6",
    "ol": "my-2 list-decimal pl-6",
    "blockquote": "my-2 border-l-4 border-gray-400 pl-3 italic",
    "table": "my-2 block overflow-x-auto border-collapse text-sm",
    "th": "border border-gray-400 px-2 py-1 font-semibold",
    "td": "border border-gray-400 px-2 py-1",
    "a": "text-blue-700 underline dark:text-blue-300",
    "code": "rounded bg-gray-300/60 px-1 font-mono text-[0.9em] dark:bg-gray-700/60",
    "hr": "my-3 border-gray-400",
}
# Displayed math on its own line; a wide equation scrolls instead of widening the bubble.
DISPLAY_MATH = "block overflow-x-auto overflow-y-hidden py-1"


_md: Any = None


def available() -> bool:
    try:
        import markdown_it  # noqa: F401
    except ImportError:
        return False
    return True


def _parser() -> Any:
    global _md
    if _md is None:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
        _md = mathml.use(md)
    return _md


async def load(step: Step) -> bool:
    """Browser only: load the parser's wheels and build it now, not on the first answer.

    `step()` is awaited before each step (a wheel installed, an import, the parser built), which
    runs as a browser task of its own. False when that fails: plain text is a fine fallback.
    """
    from client.boot import import_sliced
    from client.browser import load_wheels

    try:
        for wheel in PARSER_WHEELS:
            await step()
            await load_wheels((wheel,))
        await step()
        await import_sliced(PARSER_IMPORTS)
        await step()
        import markdown_it  # noqa: F401
        await step()
        render("warm *up*")
    except Exception as exc:
        print(f"Markdown unavailable: {exc!r}")
        return False
    await mathml.load(step)  # without it, math shows as its source
    return True


def safe_href(url: str) -> str | None:
    url = url.strip()
    if any(ord(ch) < 32 for ch in url) or not SAFE_URL.match(url):
        return None
    return url


def render(text: str) -> list[El | str]:
    """Markdown text -> nodes (see module docstring for what is allowed)."""
    return _walk(_parser().parse(text))


def _element(tag: str, token: Any) -> El:
    attrs = {"class": CLASSES[tag]} if tag in CLASSES else {}
    if tag in ("th", "td"):
        style = token.attrGet("style") or ""
        align = style.removeprefix("text-align:")
        if align in ALIGN:
            attrs["class"] += " " + ALIGN[align]
    if tag == "ol" and token.attrGet("start"):
        start = str(token.attrGet("start"))
        if start.isdigit():
            attrs["start"] = start
    if tag == "a":
        href = safe_href(str(token.attrGet("href") or ""))
        if href is None:
            return El("span")  # the link text stays, the target goes
        attrs.update(href=href, rel="noopener noreferrer nofollow", target="_blank")
    return El(tag, attrs)


def code_block(code: str, lang: str) -> El:
    lang = lang.split()[0][:30] if lang.strip() else ""
    spans: list[El | str] = [
        El("span", {"class": kind}, [piece]) if kind else piece for kind, piece in highlight(code, lang)
    ]
    copy = El("button", {"type": "button", "class": CODE_COPY, "data-action": "copy-code"}, ["Copy code"])
    buttons: list[El | str] = [copy]
    if lang.lower() in sandbox.LANGUAGES:  # runs in the page (client.components.code_runner)
        buttons.insert(0, El("button", {"type": "button", "class": CODE_COPY, **RUN}, [RUN_LABEL]))
    head = El("div", {"class": CODE_HEAD}, [El("span", {}, [lang or "code"]), El("div", {}, buttons)])
    pre = El("pre", {"class": PRE}, [El("code", {"class": "font-mono"}, spans)])
    return El("div", {"class": CODE_BLOCK}, [head, pre])


def _walk(tokens: list[Any]) -> list[El | str]:
    root: list[El | str] = []
    stack = [root]
    for tok in tokens:
        here = stack[-1]
        if tok.nesting == 1:
            if tok.hidden or tok.tag not in TAGS:  # tight-list paragraphs: keep content, drop <p>
                stack.append(here)
                continue
            el = _element(tok.tag, tok)
            here.append(el)
            stack.append(el.children)
        elif tok.nesting == -1:
            stack.pop()
        elif tok.type == "inline":
            here.extend(_walk(tok.children or []))
        elif tok.type in ("text", "html_inline", "html_block"):  # html is off; text if it ever appears
            here.append(tok.content)
        elif tok.type == "code_inline":
            here.append(El("code", {"class": CLASSES["code"]}, [tok.content]))
        elif tok.type in ("fence", "code_block"):
            here.append(code_block(tok.content, tok.info if tok.type == "fence" else ""))
        elif tok.type == "softbreak":
            here.append("\n")
        elif tok.type == "hardbreak":
            here.append(El("br"))
        elif tok.type == "hr":
            here.append(El("hr", {"class": CLASSES["hr"]}))
        elif tok.type == "image":
            here.append(tok.content)  # alt text only: no request leaves because of an answer
        elif tok.type in mathml.TOKENS:
            here.append(_math(tok))
    return root


def _math(tok: Any) -> El:
    """MathML (displayed on its own line unless `$…$` or `\\(…\\)`), or the source as code."""
    display = tok.type != "math_inline"
    math = mathml.node(tok.content.strip(), display)
    if math is None:
        source = El("code", {"class": CLASSES["code"]}, [tok.markup + tok.content + mathml.CLOSE[tok.markup]])
        return El("p", {"class": CLASSES["p"]}, [source]) if tok.block else source
    return El("span", {"class": DISPLAY_MATH}, [math]) if display else math


def text_of(nodes: list[El | str]) -> str:
    return "".join(n if isinstance(n, str) else text_of(n.children) for n in nodes)


# --- Streaming -------------------------------------------------------------------------------
# While an answer streams, re-parsing all of it on every token makes an answer's cost grow with
# the square of its length. Blocks that can no longer change are parsed once and kept; only the
# open block at the end (the "tail") is parsed again as tokens arrive.
#
# A cut is made after a blank line outside any code fence when the next line starts at column 0
# and cannot continue what came before: not indented (list item or indented code continuing),
# not a list marker (a later item would turn the list above loose). Then the Markdown before
# the cut renders the same alone as in the whole text. Link reference definitions ("[x]: /url")
# can reach back to any earlier block, so an answer containing "]:" is parsed whole every time.
# When the answer is done it is rendered once in full (`render`), which is exact by definition.

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_BLANK = re.compile(r"[ \t]*")
_NOT_A_CUT = re.compile(r"[ \t]|[-+*]|\d{1,9}[.)]")


def _fence_open(line: str) -> str | None:
    """The fence a line opens ("```", "~~~~"...), or None."""
    match = _FENCE.fullmatch(line)
    if not match or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1)


def _fence_closes(line: str, fence: str) -> bool:
    match = _FENCE.fullmatch(line)
    return bool(
        match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not match.group(2).strip()
    )


def last_cut(text: str, start: int = 0) -> int:
    """The offset of the last safe cut in `text` at or after `start` (itself a cut, or 0), else `start`.

    Only whole lines count (the last, unfinished line never follows a cut: it could still become
    indented or a list marker as more of it arrives).
    """
    cut = start
    fence: str | None = None
    blank = False  # the previous line was blank (and outside a fence)
    pos = start
    while True:
        end = text.find("\n", pos)
        if end < 0:
            return cut
        line = text[pos:end]
        if fence is not None:
            if _fence_closes(line, fence):
                fence = None
        else:
            if blank and line and not _BLANK.fullmatch(line) and not _NOT_A_CUT.match(line):
                cut = pos
            math = mathml.BLOCK_OPEN.match(line)
            if math:  # displayed math: what looks like a fence inside it is LaTeX
                spans, _ = mathml.display_block(_lines(text, pos + math.end(), end), mathml.CLOSE[math.group(1)])
                if spans < 0:
                    return cut  # not closed yet, and no cut can follow before it is
                if spans > 0:
                    for _ in range(spans - 1):
                        end = text.index("\n", end + 1)
                    blank, pos = False, end + 1
                    continue
            fence = _fence_open(line)
            blank = _BLANK.fullmatch(line) is not None
            if fence is not None:
                blank = False
        pos = end + 1


def _lines(text: str, start: int, end: int) -> Iterator[str]:
    """text[start:end], then the whole lines after `end` (a newline) one by one."""
    yield text[start:end]
    while (after := text.find("\n", end + 1)) >= 0:
        yield text[end + 1 : after]
        end = after


@dataclass
class Update:
    """What a streamed bubble shows now: `reset` says start over with `kept` + `tail`, else
    append `kept` (blocks finished since the last update) and replace the old tail with `tail`."""

    reset: bool
    kept: list[El | str]
    tail: list[El | str]


class StreamRender:
    """Renders a growing answer, parsing each finished block once (see the notes above).

    `parsed` counts the characters handed to the parser, for tests and the bench.
    """

    def __init__(self) -> None:
        self.text = ""
        self.cut = 0  # text[:cut] is rendered and kept
        self.whole = False  # "]:" seen: parse everything every time
        self.fresh = True  # nothing shown yet: the first update starts the bubble over
        self.parsed = 0

    def update(self, text: str) -> Update:
        reset = self.fresh or self.whole or not text.startswith(self.text)
        new = text if reset else text[max(0, len(self.text) - 1) :]  # what is new ("]" may end the old)
        self.fresh = False
        if reset:
            self.cut = 0
        self.text = text
        if self.whole or "]:" in new:  # link reference definitions can reach back
            self.whole = True
            self.parsed += len(text)
            return Update(True, [], render(text))
        cut = last_cut(text, self.cut)
        kept: list[El | str] = []
        if cut > self.cut:
            kept = render(text[self.cut : cut])
            self.parsed += cut - self.cut
        self.cut = cut
        self.parsed += len(text) - cut
        return Update(reset, kept, render(text[cut:]))
