"""Python in the page without the browser: the worker's runner (client.sandbox_runner) on CPython,
the messages between it and the page, and the sandbox's turns, time limit and Stop with the runner
itself standing in for the Web Worker (tests/browser/test_python_sandbox.py runs the real one)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from client import markdown, sandbox_runner
from client.attachments import Attachment
from client.components.code_runner import panel
from client.nodes import El
from client.sandbox import (
    STOP,
    RunResult,
    Sandbox,
    chat_files,
    ending,
    file_map,
    file_name,
    for_model,
    reply,
    request,
    time_limit_s,
)
from client.state import Turn
from tests.harness import run_async
from wire.types import CODE_TIME_LIMIT_S


def execute(code: str) -> dict[str, str]:
    return run_async(sandbox_runner.execute(code))


# -- the runner ------------------------------------------------------------------------------------


def test_the_runner_captures_stdout_and_stderr() -> None:
    got = execute("import sys\nprint('out', 1)\nprint('err', file=sys.stderr)")
    assert got == {"stdout": "out 1\n", "stderr": "err\n", "error": ""}


def test_a_traceback_starts_at_the_code_and_quotes_its_lines() -> None:
    got = execute("def f():\n    return 1 / 0\n\nprint('before')\nf()")
    assert got["stdout"] == "before\n"
    lines = got["error"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == '  File "<code>", line 5, in <module>'
    assert "return 1 / 0" in got["error"] and lines[-1] == "ZeroDivisionError: division by zero"
    assert "sandbox_runner" not in got["error"]


def test_a_syntax_error_is_reported_as_python_does() -> None:
    error = execute("print('a'")["error"]
    assert 'File "<code>", line 1' in error and "SyntaxError" in error and "sandbox_runner" not in error


def test_exit_zero_is_no_error_but_another_code_is() -> None:
    assert execute("import sys\nprint('x')\nsys.exit()") == {"stdout": "x\n", "stderr": "", "error": ""}
    assert execute("raise SystemExit(0)")["error"] == ""
    assert execute("import sys\nsys.exit(3)")["error"].endswith("SystemExit: 3\n")


def test_top_level_await_runs() -> None:
    assert execute("import asyncio\nawait asyncio.sleep(0)\nprint('awaited')")["stdout"] == "awaited\n"


def test_each_run_has_fresh_globals() -> None:
    execute("leftover = 1")
    assert "NameError" in execute("print(leftover)")["error"]


def test_output_is_capped_and_says_how_much_was_cut() -> None:
    stream = sandbox_runner.Capped(limit=10)
    stream.write("12345678")
    stream.write("abcdef")
    assert stream.text() == "12345678ab" + sandbox_runner.CUT.format(4)
    out = execute(f"print('x' * {sandbox_runner.MAX_OUTPUT + 5})")["stdout"]
    assert out.startswith("x" * sandbox_runner.MAX_OUTPUT) and "6 more characters" in out


def test_a_request_puts_the_files_in_the_folder_and_reports_start_then_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    posted: list[str] = []
    files = {"data.csv": b"a,b\n1,2\n", "raw.bin": bytes(range(256))}
    code = "print(open('data.csv').read().split()[1])\nprint(len(open('raw.bin', 'rb').read()))"
    run_async(sandbox_runner.handle(request(code, files), posted.append))
    assert (tmp_path / "raw.bin").read_bytes() == bytes(range(256))
    started, finished = (reply(message) for message in posted)
    assert started.kind == "started" and finished.kind == "done"
    assert finished.result == RunResult(stdout="1,2\n256\n")


# -- the page's side --------------------------------------------------------------------------------


def test_file_names_stay_in_the_working_folder() -> None:
    assert file_name("data.csv") == "data.csv"
    assert file_name("../../lib/python3.14/os.py") == "os.py"
    assert file_name("C:\\Users\\me\\notes.txt") == "notes.txt"
    assert file_name("..") == file_name("") == file_name("/") == "file"


def test_files_come_as_bytes_or_as_the_chats_attachments_the_later_winning() -> None:
    turns = [
        Turn(user=True, text="a", files=(Attachment("data.csv", "old"),)),
        Turn(user=False, text="ok"),
        Turn(user=True, text="b", files=(Attachment("data.csv", "néw"), Attachment("x.py", "1"))),
    ]
    files = chat_files(turns)
    assert [f.name for f in files] == ["data.csv", "data.csv", "x.py"]
    assert file_map(files) == {"data.csv": "néw".encode(), "x.py": b"1"}
    assert file_map({"a/b.txt": b"\x00"}) == {"b.txt": b"\x00"}


def test_a_message_the_worker_garbles_is_a_failure_not_a_crash() -> None:
    assert reply('{"kind": "started"}').kind == "started"
    garbled = reply("not json")
    assert garbled.kind == "failed" and "unreadable" in garbled.error
    assert ending(RunResult(error=garbled.error, failed=True)) == "Python could not run the code."


def test_off_the_page_the_time_limit_is_the_default() -> None:
    assert time_limit_s() == CODE_TIME_LIMIT_S == 30.0


def test_how_a_run_ended_in_one_line() -> None:
    assert ending(RunResult(stdout="x")) == "Finished."
    assert ending(RunResult(error="Traceback...")) == "The code raised an exception."
    assert ending(RunResult(stopped=True)) == "Stopped."
    assert ending(RunResult(timed_out=True, time_limit_s=30.0)) == "Stopped: the code ran past the time limit of 30 s."
    assert RunResult(stdout="x", stderr="warning").ok and not RunResult(error="e").ok


def test_the_model_reads_each_stream_that_has_text_and_the_end_of_a_long_traceback() -> None:
    text = for_model(RunResult(stdout="45\n", error="Traceback (most recent call last):\nValueError: bad\n"))
    assert text == (
        "The code raised an exception.\n\nstdout:\n45\n\n"
        "traceback:\nTraceback (most recent call last):\nValueError: bad"
    )
    assert for_model(RunResult()) == "Finished."
    long = for_model(RunResult(stdout="a" * 500, error="T" * 500 + "KeyError: 'k'"), limit=200)
    assert "… (400 more characters)" in long and long.endswith("KeyError: 'k'") and len(long) < 300


def test_the_panel_shows_the_streams_that_have_text() -> None:
    status, parts = panel(RunResult(stdout="1\n", error="E"))
    assert status == "The code raised an exception." and parts == [("stdout", "1\n"), ("error", "E")]
    assert panel(RunResult(stopped=True)) == ("Stopped.", [])


def test_only_python_blocks_get_a_run_button() -> None:
    def buttons(text: str) -> list[str]:
        found: list[str] = []

        def walk(nodes: list[El | str]) -> None:
            for node in nodes:
                if isinstance(node, El):
                    if node.tag == "button":
                        found.append(node.attrs["data-action"])
                    walk(node.children)

        walk(markdown.render(text))
        return found

    for lang in ("python", "py", "Python3"):
        assert buttons(f"```{lang}\nprint(1)\n```") == ["run-code", "copy-code"], lang
    assert buttons("```js\nx\n```") == buttons("```\nprint(1)\n```") == ["copy-code"]


# -- the sandbox, the runner in place of the worker ------------------------------------------------------


class InProcessWorker:
    """The runner on this event loop, as the Web Worker runs it; records being terminated."""

    def __init__(self, on_message: Callable[[str], None], log: list[str]) -> None:
        self.on_message, self.log = on_message, log
        self.task: asyncio.Task[None] | None = None
        log.append("start")

    def postMessage(self, message: str) -> None:  # noqa: N802 (the DOM's name)
        self.task = asyncio.ensure_future(sandbox_runner.handle(message, self.on_message))

    def terminate(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.log.append("terminate")


@pytest.fixture
def workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Sandbox, list[str]]:
    """A sandbox of in-process workers working in tmp_path, and the log of their starts and ends."""
    monkeypatch.chdir(tmp_path)
    log: list[str] = []
    return Sandbox(lambda on_message: InProcessWorker(on_message, log)), log


FOREVER = "import asyncio\nawait asyncio.sleep(3600)"  # code that never returns, as the event loop allows


def test_runs_share_one_worker_started_on_the_first(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers

    async def two() -> list[RunResult]:
        assert log == []
        return [await box.run("print(1)", {"a.txt": b"A"}), await box.run("print(open('a.txt').read())")]

    assert run_async(two()) == [RunResult(stdout="1\n"), RunResult(stdout="A\n")]
    assert log == ["start"]


def test_the_time_limit_ends_the_worker_and_the_next_run_gets_a_fresh_one(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers
    started: list[bool] = []

    async def runs() -> tuple[RunResult, RunResult]:
        late = await box.run(FOREVER, timeout_s=0.05, on_started=lambda: started.append(True))
        return late, await box.run("print('fresh')")

    late, fresh = run_async(runs())
    assert late == RunResult(timed_out=True, time_limit_s=0.05) and started == [True]
    assert fresh == RunResult(stdout="fresh\n")
    assert log == ["start", "terminate", "start"]


def test_stop_ends_the_run_in_progress(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers

    async def stopped() -> RunResult:
        box.stop()  # nothing runs: nothing to stop, and nothing left to stop the next run
        running = asyncio.ensure_future(box.run(FOREVER, on_started=box.stop))
        return await running

    assert run_async(stopped()) == RunResult(stopped=True)
    assert log == ["start", "terminate"] and not box.running


def test_a_stop_that_comes_as_a_run_ends_does_not_stop_the_next(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers

    async def runs() -> RunResult:
        await box.run("pass")
        box._replies.put_nowait(STOP)  # as if Stop came just after the result
        return await box.run("print(2)")

    assert run_async(runs()) == RunResult(stdout="2\n") and log == ["start"]


def test_cancelling_a_run_ends_its_worker(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers

    async def cancelled() -> None:
        started = asyncio.Event()
        running = asyncio.ensure_future(box.run(FOREVER, on_started=started.set))
        await started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    run_async(cancelled())
    assert log == ["start", "terminate"]


def test_a_worker_that_fails_gives_an_error_and_is_replaced(workers: tuple[Sandbox, list[str]]) -> None:
    box, log = workers

    class Broken(InProcessWorker):
        def postMessage(self, message: str) -> None:  # noqa: N802
            self.on_message(json.dumps({"kind": "failed", "error": "Python did not start: 404"}))

    broken = Sandbox(lambda on_message: Broken(on_message, log))
    result = run_async(broken.run("print(1)"))
    assert result == RunResult(error="Python did not start: 404", failed=True) and not result.ok
    assert for_model(result) == "Python could not run the code.\n\nerror:\nPython did not start: 404"
    assert log == ["start", "terminate"]
