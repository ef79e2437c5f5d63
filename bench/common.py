"""What every bench section shares: the three stacks, timed streaming clients, and statistics.

The three stacks are started once per run and kept warm:
- `raw`: llama-cpp-python in this process (`Llama.create_completion`, stream), no HTTP at all;
- `ours`: `python -m server` (the app, llama-cpp engine), `/api/converse` over HTTP + SSE;
- `peer`: `python -m llama_cpp.server`, `/v1/completions` with `stream: true`.
All three load the same file with the same context size and thread counts, and get the same
prompt text (built by our template) and the same sampling parameters.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client.protocol import Message
from client.rpc import SseParser
from server.prompt import build_prompt

ROOT = Path(__file__).resolve().parent.parent
N_CTX = 4096
THREADS = max(1, os.cpu_count() or 1)  # what our engine uses when THREADS is unset
# Our engine sets only n_threads; llama-cpp-python then evaluates prompts on every core. The raw
# and peer stacks are given the same split, whatever --threads says.
BATCH_THREADS = max(1, os.cpu_count() or 1)
PEER_ALIAS = "peer-model"

# Greedy, no repetition penalty: the same long, marker-free output from all three stacks.
DECODE_PARAMS: dict[str, Any] = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.0, "seed": 1}
# Chat defaults (what the page sends) but greedy, so every stack writes the same answers.
CHAT_PARAMS: dict[str, Any] = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1, "seed": 1}


# -- statistics -----------------------------------------------------------------------------------


def summary(values: Sequence[float | None], digits: int = 4) -> dict[str, Any]:
    """Median and spread (min, max, interquartile range) of the values that are not None."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None, "iqr": None}
    if len(xs) >= 2:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = 0.0
    return {
        "n": len(xs),
        "median": round(statistics.median(xs), digits),
        "min": round(xs[0], digits),
        "max": round(xs[-1], digits),
        "iqr": round(iqr, digits),
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def machine_noise() -> dict[str, Any]:
    """How busy the machine was: load averages against the core count."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in load]}


# -- one timed generation -------------------------------------------------------------------------


@dataclass
class Run:
    """One streamed answer, timed on the client side (perf_counter seconds from the request)."""

    text: str = ""
    token_times: list[float] = field(default_factory=list)  # arrival of each text piece
    tokens: int = 0  # completion tokens the engine reports (or pieces, where it does not)
    prompt_tokens: int | None = None
    prompt_tokens_evaluated: int | None = None
    stop_reason: str | None = None
    total_s: float | None = None
    error: str | None = None
    end_s: float | None = None  # ours: arrival of `done`, which follows the last token (a held-back
    # trailing space is never sent, so the last piece may be one token early; `done` never is)

    @property
    def ttft_s(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    @property
    def decode_tps(self) -> float | None:
        """Tokens per second after the first token: (tokens - 1) / (last piece - first piece)."""
        if self.tokens < 2 or len(self.token_times) < 2:
            return None
        span = (self.end_s or self.token_times[-1]) - self.token_times[0]
        return (self.tokens - 1) / span if span > 0 else None


def chat_body(messages: Sequence[Message], params: dict[str, Any]) -> dict[str, Any]:
    return {"conversation": {"messages": [{"user": m.user, "text": m.text} for m in messages]}, "params": params}


def prompt_of(messages: Sequence[Message], system: str | None = None) -> str:
    return build_prompt(list(messages), system)


def iter_sse(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs as they arrive, parsed by the browser's own SSE parser."""
    parser = SseParser()
    for chunk in response.iter_bytes():
        yield from parser.feed(chunk)


def sse_run(http: httpx.Client, url: str, body: dict[str, Any],
            on_event: Callable[[Run, float, str, str], bool]) -> Run:
    """POST `body`, time each SSE event with `on_event(run, seconds, name, data)` until it
    returns True; HTTP and connection errors land in `run.error`."""
    run = Run()
    t0 = time.perf_counter()
    try:
        with http.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                response.read()
                run.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return run
            for name, data in iter_sse(response):
                if on_event(run, time.perf_counter() - t0, name, data):
                    break
    except httpx.HTTPError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    run.total_s = time.perf_counter() - t0
    return run


def ours_stream(http: httpx.Client, url: str, messages: Sequence[Message], params: dict[str, Any],
                system: str | None = None) -> Run:
    """One `/api/converse` answer from our app."""
    body = chat_body(messages, {**params, **({"system": system} if system else {})})

    def on_event(run: Run, now: float, name: str, data: str) -> bool:
        if name == "token":
            run.token_times.append(now)
            run.text += json.loads(data)["text"]
        elif name == "done":
            run.end_s = now
            done = json.loads(data)
            run.tokens = done["completion_tokens"]
            run.prompt_tokens = done["prompt_tokens"]
            run.prompt_tokens_evaluated = done.get("prompt_tokens_evaluated")
            run.stop_reason = done["stop_reason"]
        elif name == "error":
            run.error = json.loads(data).get("message", data)
        return False

    return sse_run(http, f"{url}/api/converse", body, on_event)


def peer_stream(http: httpx.Client, base: str, prompt: str, params: dict[str, Any], max_tokens: int,
                stop: Sequence[str] = ()) -> Run:
    """One `/v1/completions` streamed answer from `python -m llama_cpp.server`."""
    body = {"model": PEER_ALIAS, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
            "stop": list(stop), **params}

    def on_event(run: Run, now: float, _name: str, data: str) -> bool:
        if data == "[DONE]":
            return True
        for choice in json.loads(data).get("choices") or ():
            if choice.get("text"):
                run.token_times.append(now)
                run.text += choice["text"]
                run.tokens += 1
            if choice.get("finish_reason"):
                run.stop_reason = choice["finish_reason"]
        return False

    return sse_run(http, f"{base}/completions", body, on_event)


def raw_stream(llm: Any, prompt: str, params: dict[str, Any], max_tokens: int, stop: Sequence[str] = ()) -> Run:
    """One answer from llama-cpp-python in this process: the floor every other path is held to."""
    run = Run()
    t0 = time.perf_counter()
    for chunk in llm.create_completion(prompt, max_tokens=max_tokens, stream=True, stop=list(stop) or None,
                                       **params):
        choice = chunk["choices"][0]
        if choice["text"]:
            run.token_times.append(time.perf_counter() - t0)
            run.text += choice["text"]
            run.tokens += 1
        if choice["finish_reason"]:
            run.stop_reason = choice["finish_reason"]
    run.total_s = time.perf_counter() - t0
    return run


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss(pid: int) -> dict[str, int]:
    """Resident memory of a process in bytes: total, anonymous (heap) and file-backed (the mmap'd model)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


class Proc:
    """A server subprocess on a free loopback port, its log in a temporary file."""

    def __init__(self, name: str, argv: list[str], health: str, port: int, env: dict[str, str] | None = None,
                 timeout: float = 120) -> None:
        self.name = name
        self.port = port
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        started = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited {self.proc.returncode}: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not answer {health} in {timeout:.0f} s")
            time.sleep(0.05)
        self.ready_s = time.perf_counter() - started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def start_ours(model: Path, *, engine: str = "llama-cpp", extra_env: dict[str, str] | None = None) -> tuple[Proc, str]:
    port = free_port()
    env = {"MODEL_PATH": str(model), "ENGINE": engine, "N_CTX": str(N_CTX), "API_KEY": "",
           "QUEUE_SIZE": "64",
           "THREADS": str(THREADS), "MAX_TOKENS": "512", "DEV": "", **(extra_env or {})}
    proc = Proc(f"ours-{engine}", [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
                f"http://127.0.0.1:{port}/health", port, env)
    return proc, f"http://127.0.0.1:{port}"


def start_peer(model: Path) -> tuple[Proc, str]:
    """`python -m llama_cpp.server` with the same context and threads as ours; returns its `/v1` URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", PEER_ALIAS,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
            "--n_threads", str(THREADS), "--n_threads_batch", str(BATCH_THREADS),
            # By default a new request (even a tokenize call) cuts the running stream short, which
            # silently truncates answers under concurrency; off, so every answer is complete.
            "--interrupt_requests", "False"]
    return Proc("peer", argv, f"{base}/models", port), base


def load_raw(model: Path) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(model), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=BATCH_THREADS,
                 verbose=False)


class Stacks:
    """The stacks a run needs, started on first use and stopped at the end of the run."""

    def __init__(self, model: Path) -> None:
        self.model = model
        self._raw: Any = None
        self._procs: dict[str, tuple[Proc, str]] = {}
        self.http = httpx.Client(timeout=httpx.Timeout(300, connect=5))

    @property
    def raw(self) -> Any:
        if self._raw is None:
            self._raw = load_raw(self.model)
        return self._raw

    def ours(self) -> tuple[Proc, str]:
        if "ours" not in self._procs:
            self._procs["ours"] = start_ours(self.model)
        return self._procs["ours"]

    def peer(self) -> tuple[Proc, str]:
        if "peer" not in self._procs:
            self._procs["peer"] = start_peer(self.model)
        return self._procs["peer"]

    def ours_remote(self) -> tuple[Proc, str]:
        """Our app with ENGINE=openai in front of the peer."""
        if "ours_remote" not in self._procs:
            _, base = self.peer()
            self._procs["ours_remote"] = start_ours(
                self.model, engine="openai", extra_env={"OPENAI_BASE_URL": base, "OPENAI_MODEL": PEER_ALIAS}
            )
        return self._procs["ours_remote"]

    def close(self) -> None:
        for proc, _ in reversed(list(self._procs.values())):
            proc.stop()
        self._procs.clear()
        self.http.close()
        if self._raw is not None:
            self._raw.close()
            self._raw = None
