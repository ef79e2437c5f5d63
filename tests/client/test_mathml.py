"""LaTeX math in answers (client.mathml, through client.markdown.render): the four delimiters,
code left alone, currency left alone, malformed LaTeX shown as its source, and only whitelisted
MathML out of the converter. Streaming math is covered by tests/client/test_markdown.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from xml.etree.ElementTree import Element, SubElement

import pytest
from latex2mathml.converter import convert_to_element

from client import markdown, mathml
from client.components.chat_area import build
from client.nodes import El
from tests.fakedom import Node


def els(nodes: list[El | str]) -> Iterator[El]:
    for node in nodes:
        if isinstance(node, El):
            yield node
            yield from els(node.children)


def maths(text: str) -> list[El]:
    return [el for el in els(markdown.render(text)) if el.tag == "math"]


def codes(text: str) -> list[str]:
    return [markdown.text_of(el.children) for el in els(markdown.render(text)) if el.tag == "code"]


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("Energy $E=mc^2$ here.", "inline"),
        ("Energy \\(E=mc^2\\) here.", "inline"),
        ("Energy $$E=mc^2$$ here.", "block"),
        ("Energy \\[E=mc^2\\] here.", "block"),
        ("$$\nE=mc^2\n$$\n", "block"),
        ("\\[\nE=mc^2\n\\]\n", "block"),
        ("Energy:\n$$\nE\n= mc^2\n$$\nafter", "block"),  # ends the paragraph; "= mc^2" is no heading
        ("- item\n\n  \\[\n  E=mc^2\n  \\]\n", "block"),
    ],
)
def test_each_delimiter_renders_mathml(text: str, display: str) -> None:
    [math] = maths(text)
    assert math.attrs["display"] == display
    assert "E" in markdown.text_of([math]) and "mc" in markdown.text_of([math]).replace(" ", "")
    assert "$" not in markdown.text_of(markdown.render(text)) and "\\" not in markdown.text_of(markdown.render(text))


def test_displayed_math_gets_its_own_scrolling_line() -> None:
    [para] = markdown.render("see $$x$$ and $y$")
    assert isinstance(para, El)
    wrapper = para.children[1]
    assert isinstance(wrapper, El) and wrapper.attrs["class"] == markdown.DISPLAY_MATH
    assert wrapper.children[0] == mathml.node("x", True)
    assert para.children[3] == mathml.node("y", False)  # inline math is not wrapped


def test_symbols_are_characters_not_references() -> None:
    text = markdown.text_of([*maths("$\\alpha \\le \\infty$")])
    assert text == "α≤∞"


def test_code_is_left_alone() -> None:
    text = "Code `$x$` and `\\(y\\)`.\n\n```\n$$z$$\n\\[w\\]\n```\n\n    $v$\n"
    assert maths(text) == []
    assert codes(text) == ["$x$", "\\(y\\)", "$$z$$\n\\[w\\]\n", "$v$\n"]


@pytest.mark.parametrize(
    "text",
    ["It costs $5 and $10.", "Between $5-$10 a day", "$ 5 and 6 $", "US$5 or $6", "a $x $ b", "$$$$", "\\(  \\)"],
)
def test_currency_and_stray_delimiters_stay_text(text: str) -> None:
    assert maths(text) == []


def test_escaped_delimiters_stay_text() -> None:
    assert maths("\\$5 and \\$6$") == []
    assert markdown.text_of(markdown.render("\\\\(x\\\\)")) == "\\(x\\)"


@pytest.mark.parametrize(
    ("text", "latex", "source"),
    [
        ("bad $\\frac{$ here", "\\frac{", "$\\frac{$"),
        ("bad \\(\\left( x\\) here", "\\left( x", "\\(\\left( x\\)"),
        ("bad $$x^2^3$$ here", "x^2^3", "$$x^2^3$$"),
        ("$$\n\\frac{\n$$\n", "\\frac{", "$$\n\\frac{\n$$"),
    ],
)
def test_malformed_latex_shows_its_source(text: str, latex: str, source: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 (latex2mathml raises many kinds)
        convert_to_element(latex)
    assert maths(text) == []
    assert codes(text) == [source]


def test_without_the_converter_math_shows_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "latex2mathml.converter", None)  # importing it now fails
    mathml.node.cache_clear()
    try:
        assert maths("$x$ and $$y$$") == []
        assert codes("$x$ and $$y$$") == ["$x$", "$$y$$"]
    finally:
        mathml.node.cache_clear()


def test_only_whitelisted_tags_and_attributes_come_out() -> None:
    tree = Element("math", {"xmlns": mathml.NS, "display": "block", "onclick": "alert(1)"})
    row = SubElement(tree, "mrow", {"href": "javascript:alert(1)", "style": "position:fixed", "class": "x"})
    SubElement(row, "script").text = "alert(1)"
    SubElement(row, "annotation-xml", {"encoding": "text/html"}).text = "<img src=x onerror=alert(1)>"
    SubElement(row, "mstyle", {"mathcolor": "red", "mathbackground": "url(https://evil.example/x)"}).text = "&#x0221E;"
    SubElement(row, "mspace", {"width": "0.167em"}).tail = "<b>tail</b>"
    el = mathml.element(tree)
    assert el.attrs == {"display": "block"}
    found = list(els([el]))
    assert {e.tag for e in found} <= mathml.TAGS
    assert {name for e in found for name in e.attrs} == {"display", "mathcolor", "width"}
    assert markdown.text_of([el]) == "alert(1)<img src=x onerror=alert(1)>∞<b>tail</b>"  # markup only as text


# Common LaTeX an assistant writes: the converter's own tags and attributes for it must all be
# whitelisted, so none of it is flattened or stripped.
COMMON = [
    "\\frac{a}{b} + \\sqrt{x} + \\sqrt[3]{y}",
    "\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}",
    "\\int_0^\\infty e^{-x^2} \\, dx = \\frac{\\sqrt{\\pi}}{2}",
    "\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1",
    "\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}",
    "\\begin{aligned} a &= b \\\\ &= c \\end{aligned}",
    "\\begin{cases} 1 & x > 0 \\\\ 0 & \\text{otherwise} \\end{cases}",
    "\\mathbb{R}^n \\mathbf{v} \\hat{x} \\vec{y} \\overline{z} \\underbrace{a+b}_{2}",
    "\\left( \\frac{a}{b} \\right)^2 \\binom{n}{k} \\color{red}{x} \\boxed{y}",
    "\\operatorname{argmax}_x f(x) \\quad \\forall \\epsilon > 0",
]


@pytest.mark.parametrize("latex", COMMON)
def test_common_latex_needs_nothing_outside_the_whitelist(latex: str) -> None:
    tree = convert_to_element(latex, display="block")
    assert {e.tag for e in tree.iter()} <= mathml.TAGS
    assert {name for e in tree.iter() for name in e.attrib} - {"xmlns"} <= mathml.ATTRS
    assert mathml.node(latex, True) == mathml.element(tree)


def test_math_is_built_in_the_mathml_namespace() -> None:
    document, parent = Node(), Node("div")
    build(document, parent, markdown.render("a $x$ b"))
    [para] = parent.children
    math = para.children[1]
    assert math.tag == "math" and math.namespace == mathml.NS
    assert all(child.namespace == mathml.NS for child in math.children)
    assert para.namespace is None


MATH_PAYLOADS = [
    "$\\href{javascript:alert(1)}{x}$",
    "$$\\text{<script>alert(1)</script>}$$",
    "\\(\\color{url(https://evil.example/)}{y}\\)",
    "\\[\\style{position:fixed}{z}\\]",
    "$\\class{x}{w} \\id{y}{v} \\mathcolor{red}{u}$",
    "$\\unknown{<img src=x onerror=alert(1)>}$",
]


@pytest.mark.parametrize("payload", MATH_PAYLOADS)
def test_math_never_passes_links_styles_or_markup(payload: str) -> None:
    nodes = markdown.render(payload)
    for el in els(nodes):
        if el.tag in mathml.TAGS:
            assert set(el.attrs) <= mathml.ATTRS and all(mathml.SAFE_VALUE.fullmatch(v) for v in el.attrs.values())
            assert "url" not in "".join(el.attrs.values())
        else:
            assert el.tag in markdown.TAGS and set(el.attrs) <= {"class"}, payload
    if "<" in payload:
        assert "<" in markdown.text_of(nodes)  # the markup is still there, as text
