"""Python in the page, in real headless Chromium on the real server: a Python block of an answer
runs in its own worker on Run and shows its output, its traceback, the chat's files; Stop and the
time limit end code that never returns while the page stays responsive; the code reaches no other
host (the page's CSP holds in the worker); axe finds nothing wrong with the panel.

The answers come from a stand-in for /api/converse (tests.fakes.FakeConverse) that answers with the
Markdown a test sets: the tiny default model cannot be made to write given code. The server, page,
its Pyodide and the worker's are real. One page serves the whole module (each Pyodide start costs
seconds), so the tests run in order, each asking its own question in the same chat. The first test
saves test-results/python.png.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

import pytest
from playwright.sync_api import expect

from client.sandbox import WORKER
from server.security import CONTENT_SECURITY_POLICY
from tests.browser.helpers import (
    ANSWER_S,
    AXE,
    RUN_AXE,
    RecordedPage,
    ask,
    assert_only_loopback,
    done,
    file,
    open_chat,
    pending,
    sse,
    wait_answer,
)
from tests.fakes import FakeConverse
from tests.harness import ROOT, start_server, stop_server

LIMIT_S = 3  # the server's CODE_TIME_LIMIT_S here, so that the time limit's test needs not wait 30 s
RUN_S = 60_000  # ms for a run's result, the worker's Pyodide start included (a cold one on a busy machine)
SCREENSHOT = ROOT / "test-results" / "python.png"
OTHER_HOST = "127.0.0.2"  # still this machine: loopback, but another origin than the page's


def python(code: str) -> str:
    return f"Here it is:\n\n```python\n{code}\n```\n"


class GivenAnswer(FakeConverse):
    """Answers every request with `text`, which each test sets before it asks."""

    text = ""

    def answer(self, body: bytes, out: BufferedIOBase) -> None:
        out.write(sse(("token", {"text": self.text}), done()).encode())
        out.flush()


class OtherHost:
    """An HTTP server on OTHER_HOST that counts the requests reaching it."""

    def __init__(self) -> None:
        outer = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.hits += 1
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")  # CORS would allow it: only the CSP refuses
                self.end_headers()
                self.wfile.write(b"reached")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((OTHER_HOST, 0), Handler)
        self.url = f"http://{OTHER_HOST}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = start_server("--code-time-limit-s", str(LIMIT_S), env={"MODEL_PATH": ""})
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def answers() -> Iterator[GivenAnswer]:
    stream = GivenAnswer()
    yield stream
    stream.close()


@pytest.fixture(scope="module")
def chat(chromium: Any, server: str, answers: GivenAnswer) -> Iterator[RecordedPage]:
    """The chat page, ready, with Markdown, its answers from `answers`; checked at the end for
    requests that left the machine and for errors."""
    recorded = RecordedPage(chromium)
    page = recorded.page
    open_chat(recorded, server)
    expect(page.locator("body")).to_have_attribute("data-markdown", "ready", timeout=ANSWER_S)
    page.route("**/api/converse", lambda route: route.continue_(url=answers.url))
    # axe, served from our origin: the page's CSP (which the worker must keep) forbids injecting it inline.
    page.route("**/axe.min.js", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    yield recorded
    assert_only_loopback(recorded)
    assert recorded.errors == []
    recorded.context.close()


def block(recorded: RecordedPage, answers: GivenAnswer, text: str) -> Any:
    """Ask for an answer of `text`; its last code block."""
    answers.text = text
    ask(recorded.page, "Write some Python")
    return wait_answer(recorded.page).locator(".code-block").last


def run(code_block: Any) -> Any:
    """Press the block's Run; its output panel once the run has ended."""
    code_block.get_by_role("button", name="Run code").click()
    expect(code_block.get_by_role("button", name="Run code")).to_be_visible(timeout=RUN_S)
    return code_block.get_by_role("group", name="Output")


def test_run_shows_what_the_code_printed(chat: RecordedPage, answers: GivenAnswer) -> None:
    code = "import sys\nprint(sum(range(10)))\nprint('to stderr', file=sys.stderr)"
    code_block = block(chat, answers, python(code))
    assert not any(WORKER in url for url in chat.requests), "the worker must wait for the first Run"
    output = run(code_block)
    expect(output.get_by_role("status")).to_have_text("Finished.")
    expect(output.locator("[data-part=stdout]")).to_have_text("45\n")
    expect(output.locator("[data-part=stderr]")).to_have_text("to stderr\n")
    expect(output.locator("[data-part=error]")).to_have_count(0)
    # The worker came from our server, with the page's own Pyodide build (already in the cache).
    assert any(WORKER in url for url in chat.requests)
    page = chat.page
    page.add_script_tag(url="/axe.min.js")
    assert page.evaluate(RUN_AXE) == []
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))


def test_an_exception_shows_its_traceback(chat: RecordedPage, answers: GivenAnswer) -> None:
    code = "def half(x):\n    return x / 0\n\nprint('before')\nhalf(3)"
    output = run(block(chat, answers, python(code)))
    expect(output.get_by_role("status")).to_have_text("The code raised an exception.")
    expect(output.locator("[data-part=stdout]")).to_have_text("before\n")
    traceback = output.locator("[data-part=error]")
    expect(traceback).to_contain_text('File "<code>", line 5, in <module>')
    expect(traceback).to_contain_text("return x / 0")  # the code's own lines are quoted
    expect(traceback).to_contain_text("ZeroDivisionError: division by zero")
    assert "sandbox_runner" not in (traceback.text_content() or "")


def test_stop_ends_an_endless_loop_while_the_page_stays_responsive(chat: RecordedPage, answers: GivenAnswer) -> None:
    page = chat.page
    code_block = block(chat, answers, python("while True:\n    pass"))
    code_block.get_by_role("button", name="Run code").click()
    output = code_block.get_by_role("group", name="Output")
    expect(output.get_by_role("status")).to_have_text("Running…", timeout=RUN_S)
    # The loop runs in the worker: the page answers at once, and typing still works.
    start = time.perf_counter()
    assert page.evaluate("1 + 1") == 2
    assert time.perf_counter() - start < 1
    box = page.get_by_role("textbox", name="Message")
    box.press_sequentially("still here")
    expect(box).to_have_value("still here")
    box.fill("")
    code_block.get_by_role("button", name="Stop code").click()
    expect(output.get_by_role("status")).to_have_text("Stopped.")
    expect(code_block.get_by_role("button", name="Run code")).to_be_visible()
    # A fresh worker runs the next code.
    output = run(block(chat, answers, python("print('again')")))
    expect(output.locator("[data-part=stdout]")).to_have_text("again\n")


def test_the_time_limit_ends_a_run(chat: RecordedPage, answers: GivenAnswer) -> None:
    code_block = block(chat, answers, python("while True:\n    pass"))
    code_block.get_by_role("button", name="Run code").click()
    output = code_block.get_by_role("group", name="Output")
    expect(output.get_by_role("status")).to_have_text("Running…", timeout=RUN_S)
    started = time.perf_counter()
    expect(output.get_by_role("status")).to_have_text(
        f"Stopped: the code ran past the time limit of {LIMIT_S} s.", timeout=(LIMIT_S + 10) * 1000
    )
    assert time.perf_counter() - started >= LIMIT_S - 0.5


def test_the_chats_files_are_in_the_working_folder(chat: RecordedPage, answers: GivenAnswer) -> None:
    page = chat.page
    page.locator("#attach-file").set_input_files([file("data.csv", "name,age\nAda,36\nAlan,41\n")])
    expect(pending(page).get_by_text("data.csv")).to_be_visible()
    code = "import csv\nrows = list(csv.DictReader(open('data.csv')))\nprint(sum(int(r['age']) for r in rows))"
    output = run(block(chat, answers, python(code)))
    expect(output.locator("[data-part=stdout]")).to_have_text("77\n")


# Fetches `url` from the worker, printing the CSP violations the worker's global scope reports.
FETCH = """\
import asyncio, js
from pyodide.ffi import create_proxy
from pyodide.http import pyfetch

def report(event):
    print(f"refused by {{event.effectiveDirective}}: {{event.blockedURI}}")

js.addEventListener("securitypolicyviolation", create_proxy(report))
try:
    response = await pyfetch({url!r})
    print(await response.text())
finally:
    await asyncio.sleep(0.2)  # the violation event is dispatched after the fetch fails
"""


def test_the_code_cannot_reach_another_host(chat: RecordedPage, answers: GivenAnswer, server: str) -> None:
    # A worker's policy is its script's response's: the page's, like every response of ours.
    script = chat.page.request.get(server + WORKER)
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY
    other = OtherHost()
    try:
        assert urllib.request.urlopen(other.url, timeout=5).read() == b"reached"  # noqa: S310 (our own loopback server)
        output = run(block(chat, answers, python(FETCH.format(url=other.url))))
        expect(output.get_by_role("status")).to_have_text("The code raised an exception.")
        expect(output.locator("[data-part=error]")).to_contain_text("Failed to fetch")
        # The worker itself reports why: its Content-Security-Policy.
        expect(output.locator("[data-part=stdout]")).to_have_text(f"refused by connect-src: {other.url}\n")
        assert other.hits == 1  # the test's own request only
    finally:
        other.close()
    # The same code reaches our own host: it is the policy that refused, not the network.
    code = "from pyodide.http import pyfetch\nresponse = await pyfetch('/health')\nprint(response.status)"
    output = run(block(chat, answers, python(code)))
    expect(output.locator("[data-part=stdout]")).to_have_text("200\n")
