"""What the tests and the benchmarks share: processes, ports, our server and llama.cpp's, SSE,
request bodies, polling, /metrics, and a process's resident memory.

- `spawn` starts a process with its output in a log file and waits until a URL answers 200;
  `stop_server` ends it (terminate, then kill).
- `start_server` runs `python -m server`; `start_llama_server` runs llama.cpp's own server
  (`tests.llama_server`, xllamacpp on loopback) as the peer.
- `iter_sse`, `aiter_sse` and `read_events` read an event stream with the browser's own parser
  (`client.rpc.SseParser`); `converse` posts to /api/converse and reads the answer; `hang_up`
  closes a stream part-way.
- `chat`, `openai_chat` and `completion` build request bodies; `answer_of` joins an answer's tokens.
- `run_server` runs `python -m server` to its end (a start that must fail); `wait_until` polls a
  condition, `wait_healthy` an in-process app's /health; `metrics` reads /metrics.
- `cut` is a hypothesis strategy: a text, and the same text cut into pieces anywhere.

    python -m tests.harness llama-server [--threads N] [--kv-unified] MODEL PORT [tests.llama_server flags]

runs `tests.llama_server` with those two settings changed (it fixes 2 threads and a KV cache split
per slot), so that a benchmark can give the peer the same threads and KV pool as our engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from client.rpc import SseParser
from server.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
LOCAL = "http://127.0.0.1"  # TestClient's base URL: its own "testserver" is no loopback name, and is refused
T = TypeVar("T")
LLAMA_SERVER_MODEL = "gemma-remote"  # tests.llama_server.REMOTE_MODEL (not imported: that module needs pytest)


class Popen(subprocess.Popen[str]):
    """A process `spawn` started: its output is in the file `log_path`, and it took `ready_s`
    seconds to answer its ready URL; `data_home`: the XDG_DATA_HOME `start_server` gave it."""

    log_path: str = ""
    ready_s: float = 0.0
    data_home: str = ""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a thread of its own.

    Playwright's sync API keeps an event loop running on the main thread while a browser
    fixture is alive, and asyncio.run refuses to nest.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(argv: list[str], ready_url: str | None, env: dict[str, str] | None = None, timeout: float = 60) -> Popen:
    """Start a process with its output in a log file (a pipe could fill up and block it) and,
    given `ready_url`, wait until that URL answers 200.

    The process carries `log_path` (its output) and `ready_s` (seconds from start to ready).
    """
    log = tempfile.NamedTemporaryFile("w+", prefix="snake_llama-", suffix=".log", delete=False)  # noqa: SIM115
    started = time.perf_counter()
    proc = Popen(
        argv, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    log.close()
    proc.log_path = log.name
    name = argv[2] if len(argv) > 2 and argv[1] == "-m" else argv[0]
    deadline = time.monotonic() + timeout
    while ready_url:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited {proc.returncode}: {Path(log.name).read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"{name} did not answer {ready_url} in {timeout:.0f} s")
        time.sleep(0.05)
    proc.ready_s = time.perf_counter() - started
    return proc


def stop_server(proc: Popen, timeout: float = 10) -> None:
    """Terminate the process, and kill it if it has not ended within `timeout` seconds; remove the
    data folder `start_server` gave it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.data_home:
        shutil.rmtree(proc.data_home, ignore_errors=True)


def data_home() -> dict[str, str]:
    """An XDG_DATA_HOME of its own for one server: the default models folder lives there, and a
    test must never read or fill the real user's."""
    return {"XDG_DATA_HOME": tempfile.mkdtemp(prefix="snake_llama-data-")}


def remove_log(proc: Popen) -> None:
    Path(proc.log_path).unlink(missing_ok=True)


def start_server(
    *args: str, env: dict[str, str] | None = None, wait: bool = True, timeout: float = 60
) -> tuple[Popen, str]:
    """`python -m server` in a subprocess on a free loopback port, with a data folder of its own
    (unless `env` names one); returns it and its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "server", "--port", str(port), *args]
    env = {**data_home(), **(env or {})}
    try:
        proc = spawn(argv, f"{url}/health" if wait else None, env, timeout)
    except BaseException:
        shutil.rmtree(env["XDG_DATA_HOME"], ignore_errors=True)
        raise
    proc.data_home = env["XDG_DATA_HOME"]
    return proc, url


def run_server(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m server` with `args`, run to its end: for a start that must fail. It sees only the
    settings in `env`, none of this process's own."""
    clean = {k: v for k, v in os.environ.items() if k not in {d.env for d in SETTINGS}}
    home = data_home()
    try:
        return subprocess.run(
            [sys.executable, "-m", "server", *args], cwd=ROOT, env={**clean, **home, **(env or {})},
            capture_output=True, text=True, timeout=timeout,
        )
    finally:
        shutil.rmtree(home["XDG_DATA_HOME"], ignore_errors=True)


def wait_until(condition: Callable[[], bool], timeout: float = 60, interval: float = 0.1) -> None:
    """Poll `condition` every `interval` seconds until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


class Status(Protocol):
    @property
    def status_code(self) -> int: ...


class Gets(Protocol):
    """A client that GETs a path of the app it is bound to: an httpx.Client with a base_url, or
    Starlette's TestClient (built on httpx2, whose Response is another class)."""

    def get(self, url: str) -> Status: ...


def wait_healthy(client: Gets, timeout: float = 30) -> None:
    """Poll an app's /health through `client` (a Starlette TestClient, say) until it answers 200:
    its model has loaded."""
    wait_until(lambda: client.get("/health").status_code == 200, timeout, interval=0.05)


KEYED_LABELS = ("stop_reason", "route", "key")  # the labels `metrics` also sums by


def metrics(url: str) -> dict[str, float]:
    """/metrics, each sample summed over its labels, and by stop reason and by route too where it
    has one (`snake_llama_answers_total{stop_reason=cancelled}`,
    `snake_llama_requests_total{route=/api/converse}`); 0 for one not sampled yet."""
    out: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            labels = [label for label in KEYED_LABELS if label in sample.labels]
            for key in (sample.name, *(f"{sample.name}{{{label}={sample.labels[label]}}}" for label in labels)):
                out[key] += sample.value
    return out


def idle(url: str) -> bool:
    """No answer runs or waits on the server at `url`."""
    now = metrics(url)
    return now["snake_llama_answers_running"] == 0 and now["snake_llama_queue_depth"] == 0


def start_looping_server(folder: Path, n_ctx: int = 32768, **env: str) -> tuple[Popen, str]:
    """Our server on a tiny model that never stops on its own ("tick tock " forever), so that how
    long an answer runs is up to the test; `env` adds settings."""
    from tests import tinymodels

    path = folder / "loop.gguf"
    tinymodels.write_gguf(path, "f32", continuation="tick tock ", loop=True)
    return start_server("--model", str(path), "--n-ctx", str(n_ctx), env={"THREADS": "1", "KV_POOL": "65536", **env})


def start_thinking_server(folder: Path) -> tuple[Popen, str]:
    """Our server on a tiny thinking model: its template opens `<think>` in the generation prompt,
    and it answers `THINKING_ANSWER` (thoughts, `</think>`, then `ANSWER`) to any chat."""
    from tests import tinymodels

    path = folder / "thinking.gguf"
    tinymodels.write_gguf(
        path, "f32", continuation=tinymodels.THINKING_ANSWER, chat_template=tinymodels.THINKING_TEMPLATE
    )
    return start_server("--model", str(path), "--n-ctx", "2048", env={"THREADS": "1"})


def start_tool_server(folder: Path) -> tuple[Popen, str]:
    """Our server on a tiny model whose template takes tools and that calls `get_time` with
    `tinymodels.TOOL_ARGUMENTS` whenever it answers."""
    from tests import tinymodels

    path = folder / "caller.gguf"
    tinymodels.write_gguf(path, "f32", continuation=tinymodels.TOOL_CALL, chat_template=tinymodels.TOOL_TEMPLATE)
    return start_server("--model", str(path), "--n-ctx", "2048", env={"THREADS": "1"})


def start_llama_server(
    model: Path,
    *,
    n_ctx: int = 4096,
    parallel: int = 2,
    threads: int | None = None,
    kv_unified: bool = False,
    alias: str = LLAMA_SERVER_MODEL,
    timeout: float = 120,
    port: int = 0,
) -> tuple[Popen, str]:
    """llama.cpp's own server (`tests.llama_server`) on `port` (0: a free loopback port); returns it
    and its root URL (the OpenAI API is under `/v1`). `n_ctx` is the KV cache all slots share;
    `threads` and `kv_unified` (every slot may use the whole cache, as our engine's do) go through
    this module's `llama-server` entry point."""
    port = port or free_port()
    root = f"http://127.0.0.1:{port}"
    flags = [str(model), str(port), "--n-ctx", str(n_ctx), "--parallel", str(parallel), "--alias", alias]
    if threads is None and not kv_unified:
        argv = [sys.executable, "-m", "tests.llama_server", *flags]
    else:
        extra = [*(["--threads", str(threads)] if threads else []), *(["--kv-unified"] if kv_unified else [])]
        argv = [sys.executable, "-m", "tests.harness", "llama-server", *extra, *flags]
    return spawn(argv, f"{root}/health", timeout=timeout), root


def children(pid: int) -> set[int]:
    """The processes `pid` started that are alive now (none once it is gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return {int(c) for t in tasks for c in (t / "children").read_text().split()}
    except (FileNotFoundError, ProcessLookupError):  # it or a thread of it ended meanwhile
        return set()


def rss(pid: int) -> dict[str, int]:
    """Resident memory of a process and its children (the server's llama.cpp models load in child
    processes) in bytes: VmRSS (total), RssAnon (heap), RssFile (file-backed pages such as a mapped
    model) and VmHWM (the sum of each one's peak)."""
    out = dict.fromkeys(("VmRSS", "RssAnon", "RssFile", "VmHWM"), 0)
    for one in {pid, *children(pid)}:
        try:
            with open(f"/proc/{one}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in out:
                        out[key] += int(value.split()[0]) * 1024
        except FileNotFoundError:  # a child that ended meanwhile
            pass
    return out


# -- server-sent events ---------------------------------------------------------------------------


def text_pieces(pieces: Iterable[object]) -> list[str]:
    """The answer text of an engine's pieces (`server.engines.base.Text`), piece by piece."""
    from server.engines.base import Text

    return [p.text for p in pieces if isinstance(p, Text)]


def iter_sse(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs as they arrive, parsed by the browser's own SSE parser."""
    parser = SseParser()
    for chunk in response.iter_bytes():
        yield from parser.feed(chunk)


async def aiter_sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """`iter_sse` for an async response."""
    parser = SseParser()
    async for chunk in response.aiter_bytes():
        for event in parser.feed(chunk):
            yield event


def start_grammar_tool_server(folder: Path, call: str = "", **env: str) -> tuple[Popen, str]:
    """Our server on a tiny model on the seed's template (no tools in it) that answers every chat
    with `call` (`tinymodels.GRAMMAR_CALL`, of `get_time`, by default): a call where tools are
    offered, its text where not; `env` adds settings."""
    from tests import tinymodels

    path = folder / "caller.gguf"
    tinymodels.write_gguf(path, "f32", continuation=call or tinymodels.GRAMMAR_CALL)
    return start_server("--model", str(path), "--n-ctx", "2048", env={"THREADS": "1", **env})


def read_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """Events with their JSON data decoded, parsed by the browser's own SSE parser."""
    return [(name, json.loads(data)) for name, data in iter_sse(response)]


def converse(url: str, body: Any, timeout: float = 120) -> tuple[int, list[tuple[str, Any]]]:
    """POST `body` to /api/converse: the status and the events (or one `http_error` event)."""
    with httpx.stream("POST", f"{url}/api/converse", json=body, timeout=timeout) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, read_events(response)
        response.read()
        return response.status_code, [("http_error", response.json())]


async def hang_up(stream: AsyncIterator[Any]) -> None:
    """Close an event stream part-way, as a client going away does. The servers' streams are async
    generators, typed as the AsyncIterator they promise; closing one is what the test is about."""
    assert isinstance(stream, AsyncGenerator), stream
    await stream.aclose()


# -- request bodies -------------------------------------------------------------------------------


def chat(*texts: str, **params: Any) -> dict[str, Any]:
    """A /api/converse body: alternating user/model messages, the last one from the user."""
    n = len(texts)
    messages = [{"user": (n - i) % 2 == 1, "text": t} for i, t in enumerate(texts)]
    return {"conversation": {"messages": messages}, "params": params}


# A prompt the default model keeps answering (greedy, no repeat penalty: the next number always
# follows), so that an answer is still running when a test hangs up, whatever the machine's speed.
COUNT = "Count from 1 to 100: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


def answer_of(events: Sequence[tuple[str, Any]]) -> str:
    """The answer's text: its `token` events joined."""
    return "".join(data["text"] for name, data in events if name == "token")


def openai_chat(*texts: str, model: str = "", system: str | None = None, stream: bool = True,
                **params: Any) -> dict[str, Any]:
    """A /v1/chat/completions body: alternating user/assistant messages, the last from the user."""
    n = len(texts)
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user" if (n - i) % 2 == 1 else "assistant", "content": t} for i, t in enumerate(texts)]
    body = {"model": model, "messages": messages, "stream": stream, **params}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def completion(prompt: str | Sequence[int], *, model: str = "", stream: bool = True, **params: Any) -> dict[str, Any]:
    """A /v1/completions body; `prompt` is text or (llama.cpp) a list of token ids."""
    body = {"model": model, "prompt": prompt if isinstance(prompt, str) else list(prompt), "stream": stream, **params}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


# -- hypothesis -----------------------------------------------------------------------------------


@st.composite
def cut(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> tuple[str, list[str]]:
    """A text from `texts`, and the same text cut into pieces anywhere (as a tokenizer might)."""
    text = draw(texts)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=len(text) + 1)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# -- `python -m tests.harness llama-server ...` ---------------------------------------------------


def _llama_server(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.harness llama-server")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: as tests.llama_server)")
    parser.add_argument("--kv-unified", action="store_true", help="every slot may use the whole KV cache")
    ours, rest = parser.parse_known_args(argv)
    import xllamacpp

    from tests import llama_server

    server = xllamacpp.Server

    def configured(params: Any) -> Any:
        if ours.threads:
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = ours.threads
        params.kv_unified = ours.kv_unified
        return server(params)

    xllamacpp.Server = configured  # tests.llama_server.serve builds its server through this name
    sys.argv = ["tests.llama_server", *rest]
    llama_server.main()


if __name__ == "__main__":
    if sys.argv[1:2] != ["llama-server"]:
        sys.exit(__doc__)
    _llama_server(sys.argv[2:])
