"""llama.cpp's server in a child process of ours, reached over its private listener.

Creating xllamacpp's `Server` loads the model, and its constructor holds the GIL all the while
(about 1 to 2 s for the 253 MB default model on a CPU): in our own process that stalls every
request, /health included, for as long, whatever thread it runs on. In a child the load holds
only the child's GIL, and we wait for it on a pipe, which releases ours.

`CommonParams` does not cross a process boundary, so the child builds them itself: it is given a
builder (a function of ours, by its import path) and the builder's keyword arguments as JSON.
It loads the model, says on a pipe how that went (with what llama.cpp printed, which the error
messages quote), and then lives until its stdin closes: when we close the engine, or when our
process ends, however it ends (`kill -9` included).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]  # where `server` is imported from, for the child
# the child's whole program: our package's folder first on its path, whatever folder we run in
CHILD = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from server.engines.llama_process import main; main()"
# a broken stream from a child that is being killed: how long to wait for it to be gone
DYING_S = 1.0


class Order(msgspec.Struct, frozen=True):
    """What the child is to load: `builder` ("module:qualified.name") called with `kwargs`
    returns the `CommonParams`."""

    builder: str
    kwargs: dict[str, Any]


class Loaded(msgspec.Struct, frozen=True):
    """How the load went, and what llama.cpp printed meanwhile."""

    ok: bool
    said: str
    version: str  # xllamacpp's, for the error messages


class LlamaProcess:
    """A child process that holds one loaded llama.cpp server. Creating one blocks until the
    model is loaded or failed (`ok`, `said`, `version` say which); `close` ends it."""

    def __init__(self, builder: Callable[..., Any], **kwargs: Any) -> None:
        order = Order(f"{builder.__module__}:{builder.__qualname__}", kwargs)
        # stdin: the order, then held open as the child's lifeline; stdout: the report
        self._proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        stdin, stdout = self._pipes()
        try:
            stdin.write(msgspec.json.encode(order) + b"\n")
            stdin.flush()
            line = stdout.readline()  # blocks until the load ends, without the GIL
        except BrokenPipeError:  # the child died before it read its order
            line = b""
        stdout.close()
        if line:
            loaded = msgspec.json.decode(line, type=Loaded)
        else:  # it died while loading (llama.cpp aborts on some damaged files): we serve on
            # (in llama.cpp's log format, which the error messages read: time, level, text)
            said = f"- E the loading process ended with exit status {self._proc.wait()}\n"
            loaded = Loaded(False, said, metadata.version("xllamacpp"))
        self.ok, self.said, self.version = loaded.ok, loaded.said, loaded.version
        if not self.ok:
            self.close(0)

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        return self._proc.stdin, self._proc.stdout

    @property
    def pid(self) -> int:
        return self._proc.pid

    def ended(self, wait: float = 0.0) -> str:
        """Why the child is gone, or "" while it runs. `wait`: seconds to give a child that may be
        dying: a killed one closes its sockets before its exit status can be read."""
        try:
            status = self._proc.wait(wait) if wait else self._proc.poll()
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            return ""
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        return f"the model's process ended ({how})"

    def close(self, timeout: float) -> bool:
        """End the child: it exits when its stdin closes; killed if it has not within `timeout`
        seconds. Returns once it is gone (its memory with it); False if it had to be killed."""
        stdin, _ = self._pipes()
        with contextlib.suppress(BrokenPipeError):  # it died already
            stdin.close()
        try:
            self._proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            return False


def main() -> None:
    """The child: read the order, load, report, and live until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which then closes us
    report = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever llama.cpp prints to stdout goes to the log, never into the report
    order = msgspec.json.decode(sys.stdin.buffer.readline(), type=Order)
    import xllamacpp

    from server.engines.native import capture_native_output

    module, _, name = order.builder.partition(":")
    builder: Any = importlib.import_module(module)
    for part in name.split("."):
        builder = getattr(builder, part)
    server = None
    with capture_native_output() as said:
        try:
            server = xllamacpp.Server(builder(**order.kwargs))
        except RuntimeError:  # llama.cpp refused: what it printed says why
            pass
        except (ValueError, AttributeError) as exc:  # a parameter xllamacpp refused
            said.append(f"- E {exc}\n")
    report.write(msgspec.json.encode(Loaded(server is not None, "".join(said), xllamacpp.__version__)) + b"\n")
    report.close()
    if server is not None:
        sys.stdin.buffer.read()  # until the server closes it, or its process ends
    # no orderly native shutdown: it may wait on llama.cpp's threads, and the OS frees it all at once
    os._exit(0)
