"""The Run buttons of Python code blocks (client.markdown.code_block makes them): Run runs the block
in the page's sandbox (client.sandbox) with the chat's files, the button becomes Stop while it runs,
and an output panel under the block shows how it ended, its stdout, its stderr and its traceback.

`panel` says what the panel shows without a DOM; `CodeRunner` puts it on the page. The chat area
hands clicks to `CodeRunner.click` (its listener is delegated: answers are rebuilt as they stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from client import sandbox
from client.attachments import Attachment
from client.markdown import RUN, RUN_LABEL
from client.sandbox import RunResult

STOP = {"data-action": "stop-code", "aria-label": "Stop code"}
STOP_LABEL = "Stop"
STARTING = "Starting Python…"
RUNNING = "Running…"
PANEL_LABEL = "Output"

# Full class strings so Tailwind's scanner finds them here.
PANEL = "border-t border-gray-300 bg-white px-3 py-2 text-sm dark:border-gray-700 dark:bg-gray-950"
STATUS = "text-xs text-gray-700 dark:text-gray-300"
STREAMS = {
    "stdout": "whitespace-pre-wrap font-mono text-gray-900 dark:text-gray-100",
    "stderr": "whitespace-pre-wrap font-mono text-red-800 dark:text-red-300",
    "error": "whitespace-pre-wrap font-mono text-red-800 dark:text-red-300",
    "failure": "whitespace-pre-wrap text-red-800 dark:text-red-300",
}
CAPTION = "mt-2 text-xs font-medium text-gray-700 dark:text-gray-300"
CAPTIONS = {"stdout": "Printed", "stderr": "Printed to stderr", "error": "Traceback", "failure": "Why"}

Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


def panel(result: RunResult) -> tuple[str, list[tuple[str, str]]]:
    """The panel's status line and its (stream, text) parts, the empty ones left out."""
    why = "failure" if result.failed else "error"
    parts = [("stdout", result.stdout), ("stderr", result.stderr), (why, result.error)]
    return sandbox.ending(result), [(kind, text) for kind, text in parts if text]


class CodeRunner:
    """Runs code blocks on Run and ends them on Stop; `files()` gives the chat's files at each Run."""

    def __init__(self, spawn: Spawn, files: Callable[[], tuple[Attachment, ...]]) -> None:
        self._spawn, self._files = spawn, files
        self._runs: dict[str, asyncio.Task[None]] = {}  # a panel's data-run: its block's run
        self._made = 0

    def click(self, button: Any) -> bool:
        """Handle a click on `button` if it is a Run or Stop button; whether it was."""
        action = str(button.dataset.action)
        if action not in (RUN["data-action"], STOP["data-action"]):
            return False
        block = button.closest(".code-block")
        output = self._panel(block)
        key = str(output.dataset.run)
        if action == STOP["data-action"]:
            running = self._runs.get(key)
            if running is not None:
                running.cancel()  # client.sandbox ends the worker, as stop() does
            return True
        code = str(block.querySelector("pre code").textContent)
        self._runs[key] = self._spawn(self._run(button, output, code, key))
        return True

    async def _run(self, button: Any, output: Any, code: str, key: str) -> None:
        _flip(button, STOP, STOP_LABEL)
        _show(output, STARTING, [])
        try:
            result = await sandbox.run(code, self._files(), on_started=lambda: _show(output, RUNNING, []))
        except asyncio.CancelledError:
            result = RunResult(stopped=True)
        finally:
            self._runs.pop(key, None)
            _flip(button, RUN, RUN_LABEL)
        _show(output, *panel(result))

    def _panel(self, block: Any) -> Any:
        """The block's output panel, made on its first run."""
        from js import document

        found = block.querySelector(":scope > [data-part=run-output]")
        if found:  # JS null when there is none yet
            return found
        made = document.createElement("div")
        made.dataset.part = "run-output"
        self._made += 1
        made.dataset.run = str(self._made)  # a JS element has no stable Python identity: this names its run
        made.className = PANEL
        made.setAttribute("role", "group")
        made.setAttribute("aria-label", PANEL_LABEL)
        status = document.createElement("p")
        status.className = STATUS
        status.setAttribute("role", "status")  # announced: how the run ended
        status.dataset.part = "run-status"
        made.append(status)
        block.append(made)
        return made


def _flip(button: Any, attrs: dict[str, str], label: str) -> None:
    for name, value in attrs.items():
        button.setAttribute(name, value)
    button.textContent = label


def _show(output: Any, status: str, parts: list[tuple[str, str]]) -> None:
    from js import document

    line = output.querySelector("[data-part=run-status]")
    line.textContent = status
    while line.nextSibling:
        line.nextSibling.remove()
    for kind, text in parts:
        caption = document.createElement("p")
        caption.className = CAPTION
        caption.textContent = CAPTIONS[kind]
        pre = document.createElement("pre")
        pre.className = STREAMS[kind]
        pre.dataset.part = kind
        pre.textContent = text
        output.append(caption, pre)
