"""Math in answers, in real headless Chromium: LaTeX streamed into an answer renders as native
MathML (client.mathml), code stays code, currency and malformed LaTeX stay text, nothing is
fetched from elsewhere, and axe finds nothing wrong. Saves test-results/math.png for the README.

The answer comes from a stand-in for /api/converse (FakeConverse), not the real model: the tiny
default model cannot write LaTeX. Everything else (server, page, Pyodide, the wheels) is real.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

import pytest
from playwright.sync_api import expect

from client.mathml import NS, WHEELS
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    RecordedPage,
    ask,
    assert_only_loopback,
    open_chat,
    sse,
    wait_answer,
)
from tests.fakes import FakeConverse
from tests.harness import ROOT

SCREENSHOT = ROOT / "test-results" / "math.png"
MALFORMED = "$\\frac{1}{$"
ANSWER = (
    "Einstein's relation is $E = mc^2$, and in a right triangle \\(a^2 + b^2 = c^2\\).\n\n"
    "The Gaussian integral:\n\n"
    "$$\n\\int_{-\\infty}^{\\infty} e^{-x^2}\\,dx = \\sqrt{\\pi}\n$$\n\n"
    "and the roots of $ax^2 + bx + c = 0$ are\n"
    "\\[x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}\\]\n\n"
    'In code it stays code: `$x$`, and\n\n```python\nprice = "$5"  # \\(not math\\)\n```\n\n'
    f"It costs $5 and $10. A broken formula stays as written: {MALFORMED}\n"
)


class MathStream(FakeConverse):
    """Streams ANSWER a few characters at a time, so math arrives in pieces as a model writes it."""

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
        pieces = [ANSWER[i : i + 3] for i in range(0, len(ANSWER), 3)]
        out.write(sse(*(("token", {"text": piece}) for piece in pieces)).encode())
        done = {"stop_reason": "stop", "prompt_tokens": 9, "completion_tokens": len(pieces), "ttft_s": 0.01}
        out.write(sse(("done", {**done, "tokens_per_s": 100.0})).encode())
        out.flush()


@pytest.fixture
def math_stream() -> Iterator[MathStream]:
    stream = MathStream()
    yield stream
    stream.close()


def math_answer(recorded: RecordedPage, live_server: str, stream: MathStream) -> Any:
    page = recorded.page
    open_chat(recorded, live_server)
    expect(page.locator("body")).to_have_attribute("data-markdown", "ready", timeout=ANSWER_S)
    page.route("**/api/converse", lambda route: route.continue_(url=stream.url))
    ask(page, "Show me some formulas")
    return wait_answer(page).locator("[data-part=bubble]")


def test_latex_in_an_answer_renders_as_native_mathml(
    axe_page: RecordedPage, live_server: str, math_stream: MathStream
) -> None:
    assert AXE.is_file(), "run `npm ci` first"
    page = axe_page.page
    bubble = math_answer(axe_page, live_server, math_stream)
    maths = bubble.evaluate(
        """b => [...b.querySelectorAll('math')].map(m => ({
            ns: m.namespaceURI, display: m.getAttribute('display'), css: getComputedStyle(m).display,
            width: m.getBoundingClientRect().width, text: m.textContent}))"""
    )
    assert [m["ns"] for m in maths] == [NS] * 5
    assert [m["display"] for m in maths] == ["inline", "inline", "block", "inline", "block"]
    # Chromium lays MathML out itself ("block math" / "math" are MathML Core's display types).
    assert [m["css"] for m in maths] == ["math", "math", "block math", "math", "block math"]
    assert all(m["width"] > 0 for m in maths)
    assert maths[0]["text"].replace(" ", "") == "E=mc2" and "π" in maths[2]["text"]
    assert bubble.locator("mfrac").count() == 1 and bubble.locator("msqrt").count() == 2

    # Code stays code, currency and the malformed formula stay text; no markup from the answer.
    assert bubble.locator("code math, pre math").count() == 0
    expect(bubble.locator("code", has_text="$x$")).to_have_count(1)
    expect(bubble.locator("pre")).to_contain_text('price = "$5"  # \\(not math\\)')
    expect(bubble.locator("code", has_text=MALFORMED)).to_have_count(1)
    expect(bubble).to_contain_text("It costs $5 and $10.")
    assert "$" not in (bubble.locator("p").first.text_content() or "")

    # The converter came from our server, like everything else.
    assert any(url.endswith(WHEELS[0].rsplit("/", 1)[1]) for url in axe_page.requests)
    assert_only_loopback(axe_page)
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(RUN_AXE) == []
    bubble.locator("math").nth(2).scroll_into_view_if_needed()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert axe_page.errors == []


def test_without_the_converter_math_shows_its_source(
    recorded_page: RecordedPage, live_server: str, math_stream: MathStream
) -> None:
    """If the converter's wheel cannot be loaded, Markdown still renders and math is its source."""
    recorded_page.page.route(f"**{WHEELS[0]}", lambda route: route.fulfill(status=404))
    bubble = math_answer(recorded_page, live_server, math_stream)
    assert bubble.locator("math").count() == 0
    expect(bubble.locator("code", has_text="$E = mc^2$")).to_have_count(1)
    expect(bubble.locator("code", has_text="\\[x = \\frac{-b")).to_have_count(1)
    expect(bubble.locator("pre")).to_have_count(1)  # the rest is still Markdown
