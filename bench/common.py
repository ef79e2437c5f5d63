"""What every bench section shares: the stacks, timed streaming clients, and statistics.

The stacks are started once per run and kept warm:
- `engine`: our llama.cpp engine (`LlamaCppEngine`, xllamacpp) driven directly from this process
  (`render` + `stream`; its model runs in a child process, reached over a Unix socket), without
  our server: the floor for our decode rate;
- `ours`: `python -m server` (the app, llama-cpp engine), `/api/converse` over HTTP + SSE;
- `peer`: llama.cpp's own server (`tests.llama_server`, xllamacpp on loopback), `/v1/completions`
  with `stream: true`, given the token ids our engine rendered;
- `lcp` (only where `llama_cpp` is importable): `python -m llama_cpp.server`, `/v1/completions`,
  given the same prompt as text.
All load the same file with the same threads, parallel slots and KV cache (our engine and the peer
share one KV pool of KV_POOL tokens among PARALLEL slots), and get the same prompt and sampling
parameters. Processes, SSE parsing and request bodies come from `tests.harness`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from server.engines.base import Prompt, Text
from server.sampling import REPEAT_PENALTY, TOP_K, TOP_P, Sampling
from server.settings import Settings
from tests.harness import (
    LLAMA_SERVER_MODEL,
    Popen,
    chat,
    completion,
    free_port,
    iter_sse,
    remove_log,
    spawn,
    start_llama_server,
    start_server,
    stop_server,
)
from wire.types import Message

_DEFAULTS = Settings()
N_CTX = _DEFAULTS.n_ctx  # one chat's context (our fitting)
KV_POOL = _DEFAULTS.kv_pool  # the KV cache the slots share
PARALLEL = _DEFAULTS.parallel  # llama.cpp slots: chats answered at once
CACHE_RAM_MIB = _DEFAULTS.cache_ram_mib
THREADS = max(1, os.cpu_count() or 1)  # what our engine uses when THREADS is unset (0)
PEER_MODEL = LLAMA_SERVER_MODEL
LCP_MODEL = "lcp-model"
LCP_VERSION = "0.3.36"  # what `--with-llama-cpp-python` installs

# Greedy, no repetition penalty: the same long, marker-free output from every stack.
DECODE_PARAMS: dict[str, Any] = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.0, "seed": 1}
# The server's defaults (what the page sends when left alone) but greedy, so every stack writes the same answers.
CHAT_PARAMS: dict[str, Any] = {"temperature": 0.0, "top_p": TOP_P, "top_k": TOP_K, "repeat_penalty": REPEAT_PENALTY,
                               "seed": 1}


def engine_settings(model: Path) -> dict[str, Any]:
    """The settings our server and the in-process engine both get (our server as environment)."""
    return {"model_path": str(model), "engine": "llama-cpp", "n_ctx": N_CTX, "kv_pool": KV_POOL,
            "parallel": PARALLEL, "threads": THREADS, "cache_ram_mib": CACHE_RAM_MIB,
            "n_gpu_layers": _DEFAULTS.n_gpu_layers, "prompt_template": "auto"}


def lcp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


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
    truncated_turns: int | None = None  # ours: the oldest messages left out to fit the context
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


def ours_body(messages: Sequence[Message], params: dict[str, Any], system: str | None = None) -> dict[str, Any]:
    """A /api/converse body for a chat of alternating turns ending with the user's."""
    assert all(m.user == ((len(messages) - i) % 2 == 1) for i, m in enumerate(messages)), "turns must alternate"
    return chat(*(m.text for m in messages), **params, **({"system": system} if system else {}))


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


def ours_event(run: Run, now: float, name: str, data: str) -> bool:
    """Fold one /api/converse event into `run`."""
    if name == "token":
        run.token_times.append(now)
        run.text += json.loads(data)["text"]
    elif name == "done":
        run.end_s = now
        done = json.loads(data)
        run.tokens = done["completion_tokens"]
        run.prompt_tokens = done["prompt_tokens"]
        run.prompt_tokens_evaluated = done.get("prompt_tokens_evaluated")
        run.truncated_turns = done.get("truncated_turns", 0)
        run.stop_reason = done["stop_reason"]
    elif name == "error":
        run.error = json.loads(data).get("message", data)
    return False


def completion_event(run: Run, now: float, _name: str, data: str) -> bool:
    """Fold one /v1/completions stream chunk into `run`; True at `[DONE]`."""
    if data == "[DONE]":
        return True
    chunk = json.loads(data)
    if "error" in chunk:
        run.error = str(chunk["error"])
        return True
    for choice in chunk.get("choices") or ():
        if choice.get("text"):
            run.token_times.append(now)
            run.text += choice["text"]
            run.tokens += 1
        if choice.get("finish_reason"):
            run.stop_reason = choice["finish_reason"]
    usage = chunk.get("usage")
    if isinstance(usage, dict):  # llama.cpp counts tokens; a piece may hold several
        run.tokens = int(usage.get("completion_tokens", run.tokens))
        run.prompt_tokens = usage.get("prompt_tokens")
    timings = chunk.get("timings")
    if isinstance(timings, dict) and "prompt_n" in timings:
        run.prompt_tokens_evaluated = int(timings["prompt_n"])
    return False


def ours_stream(http: httpx.Client, url: str, messages: Sequence[Message], params: dict[str, Any],
                system: str | None = None) -> Run:
    """One `/api/converse` answer from our app."""
    return sse_run(http, f"{url}/api/converse", ours_body(messages, params, system), ours_event)


def completion_stream(http: httpx.Client, base: str, model: str, prompt: str | Sequence[int],
                      params: dict[str, Any], max_tokens: int, stop: Sequence[str] = ()) -> Run:
    """One `/v1/completions` streamed answer (the peer, or llama-cpp-python's server)."""
    body = completion(prompt, model=model, max_tokens=max_tokens, stop=list(stop), **params)
    return sse_run(http, f"{base}/completions", body, completion_event)


def engine_stream(engine: Any, prompt: Prompt, params: dict[str, Any], max_tokens: int) -> Run:
    """One answer from our engine in this process: the floor every other path is held to."""
    run = Run(prompt_tokens=prompt.n_tokens)
    t0 = time.perf_counter()
    answer = engine.stream(prompt, Sampling(max_tokens=max_tokens, **params))
    try:
        for piece in answer:
            if isinstance(piece, Text):  # progress while the prompt is read is not a token
                run.token_times.append(time.perf_counter() - t0)
                run.text += piece.text
    except Exception as exc:  # noqa: BLE001  (recorded, as the HTTP stacks' errors are)
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        answer.close()
    run.end_s = run.total_s = time.perf_counter() - t0
    run.tokens = answer.usage.completion_tokens
    run.prompt_tokens_evaluated = answer.usage.prompt_tokens_evaluated
    run.stop_reason = answer.usage.finish_reason
    return run


# -- processes ------------------------------------------------------------------------------------


def stop(proc: Popen) -> None:
    stop_server(proc)
    remove_log(proc)


def start_ours(model: Path, extra_env: dict[str, str] | None = None) -> tuple[Popen, str]:
    env = {k.upper(): str(v) for k, v in engine_settings(model).items()}
    env |= {"API_KEY": "", "QUEUE_SIZE": "64", "MAX_TOKENS": "512", "DEV": "", **(extra_env or {})}
    return start_server("--host", "127.0.0.1", env=env, timeout=180)


def start_peer(model: Path) -> tuple[Popen, str]:
    """llama.cpp's own server with our engine's threads, slots and KV pool; returns its root URL."""
    return start_llama_server(model, n_ctx=KV_POOL, parallel=PARALLEL, threads=THREADS, kv_unified=True,
                              alias=PEER_MODEL, timeout=180)


def start_lcp(model: Path) -> tuple[Popen, str]:
    """`python -m llama_cpp.server` with the same context and threads; returns its `/v1` URL. It
    has no parallel slots: one answer at a time behind a lock."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", LCP_MODEL,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
            "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS),
            # By default a new request cuts the running stream short, which silently truncates
            # answers under concurrency; off, so every answer is complete.
            "--interrupt_requests", "False"]
    return spawn(argv, f"{base}/models", timeout=180), base


def load_engine(model: Path) -> Any:
    """Our engine, in this process, built exactly as the server builds it."""
    from server.engines.loader import plan_engine

    return plan_engine(Settings(**engine_settings(model)))()


class Stacks:
    """The stacks a run needs, started on first use and stopped at the end of the run."""

    def __init__(self, model: Path, with_lcp: bool = False) -> None:
        self.model = model
        self.with_lcp = with_lcp
        self._engine: Any = None
        self._procs: dict[str, tuple[Popen, str]] = {}
        self._prompts: dict[tuple[tuple[tuple[bool, str], ...], str | None], Prompt] = {}
        self._texts: dict[tuple[int, ...], str] = {}
        self.http = httpx.Client(timeout=httpx.Timeout(300, connect=5))

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = load_engine(self.model)
        return self._engine

    def _proc(self, name: str, start: Callable[[Path], tuple[Popen, str]]) -> tuple[Popen, str]:
        if name not in self._procs:
            self._procs[name] = start(self.model)
        return self._procs[name]

    def ours(self) -> tuple[Popen, str]:
        return self._proc("ours", start_ours)

    def extra(self, name: str, start: Callable[[Path], tuple[Popen, str]]) -> tuple[Popen, str]:
        """Another stack of a section's own (our server with other settings), stopped with the rest."""
        return self._proc(name, start)

    def peer(self) -> tuple[Popen, str]:
        """llama.cpp's server and its root URL (the OpenAI API is under `/v1`)."""
        return self._proc("peer", start_peer)

    def lcp(self) -> tuple[Popen, str]:
        return self._proc("lcp", start_lcp)

    def prompt(self, messages: Sequence[Message], system: str | None = None) -> Prompt:
        """The chat as our engine renders it: token ids (`payload`) and stop markers."""
        key = (tuple((m.user, m.text) for m in messages), system)
        if key not in self._prompts:
            self._prompts[key] = self.engine.render(list(messages), system)
        return self._prompts[key]

    def prompt_text(self, prompt: Prompt) -> str:
        """The rendered prompt as text, without its leading BOS (llama-cpp-python adds one and
        parses control-token text), from llama.cpp's own detokenizer."""
        tokens = list(prompt.payload)  # type: ignore[call-overload]
        key = tuple(tokens)
        if key not in self._texts:
            bos = self.engine.tokenize("", special=True, add_special=True)[:1]
            body = {"tokens": tokens[len(bos):] if bos and tokens[:1] == bos else tokens}
            self._texts[key] = self.http.post(f"{self.peer()[1]}/detokenize", json=body).json()["content"]
        return self._texts[key]

    def ask(self, which: str, messages: Sequence[Message], params: dict[str, Any], max_tokens: int,
            system: str | None = None) -> Run:
        """One answer to the chat from stack `which`, with the same prompt and sampling everywhere."""
        if which == "ours":
            return ours_stream(self.http, self.ours()[1], messages, {**params, "max_tokens": max_tokens}, system)
        prompt = self.prompt(messages, system)
        if which == "engine":
            return engine_stream(self.engine, prompt, params, max_tokens)
        if which == "peer":
            return completion_stream(self.http, f"{self.peer()[1]}/v1", PEER_MODEL, list(prompt.payload),  # type: ignore[call-overload]
                                     params, max_tokens, prompt.stops)
        if which == "lcp":
            return completion_stream(self.http, self.lcp()[1], LCP_MODEL, self.prompt_text(prompt), params,
                                     max_tokens, prompt.stops)
        raise ValueError(which)

    def close(self) -> None:
        for proc, _ in reversed(list(self._procs.values())):
            stop(proc)
        self._procs.clear()
        self.http.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None
