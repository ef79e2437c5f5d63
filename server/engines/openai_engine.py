"""A remote OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, TGI) as the engine.

The prompt is built here with the same template as for a local model and sent to the remote's
`/completions` endpoint; the text streams back as server-sent events. Our stop filter still runs
above the engine, so the `### Human` marker never reaches a user whatever the remote does with
the `stop` hint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from client.protocol import SamplingParams
from server.engines.base import EngineError, Generation, ModelLoadError
from server.prompt import STOP_MARKERS
from server.settings import Settings

DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
CONNECT_TIMEOUT = 5.0

# (path under the server root, request body, reader of the answer) for the tokenizers we know
Tokenizer = tuple[str, Callable[[str, str], dict[str, Any]], Callable[[Any], int]]
TOKENIZERS: tuple[Tokenizer, ...] = (
    # llama-cpp-python's `python -m llama_cpp.server`
    ("/extras/tokenize/count", lambda model, text: {"model": model, "input": text},
     lambda r: int(r["count"])),
    # llama.cpp's `llama-server`
    ("/tokenize", lambda model, text: {"content": text, "add_special": True}, lambda r: len(r["tokens"])),
    # vLLM
    ("/tokenize", lambda model, text: {"model": model, "prompt": text}, lambda r: int(r["count"])),
)


def _error_text(response: httpx.Response) -> str:
    """The remote's own error message, if it sent one, else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:500]
        return str(error)[:500]
    return str(body)[:500]


class OpenAIEngine:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        n_ctx: int = 4096,
        max_tokens: int = 512,
        timeout: float = 120.0,
        parallel: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # answers streamed at once: the remote's slots (llama-server --parallel N, or vLLM's batch)
        self.parallel = max(1, parallel)
        self.model = model
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
        # One client for the model thread (generation), one for counting, which runs on the
        # event loop's helper threads while a generation streams.
        self._http = httpx.Client(headers=headers, timeout=limits)
        self._count_http = httpx.Client(headers=headers, timeout=limits)
        self._tokenizer: Tokenizer | None = None
        self._special_tokens = 0  # tokens the remote adds to any text (BOS)
        self._send_extras = True  # top_k / repeat_penalty, until the remote refuses them

    @classmethod
    def connect(cls, settings: Settings) -> OpenAIEngine:
        """Check that the remote answers and pick its model; `ModelLoadError` says how to fix it."""
        base = settings.openai_base_url.rstrip("/")
        if not base:
            raise ModelLoadError(
                "ENGINE=openai needs OPENAI_BASE_URL: set it to the remote server's OpenAI-compatible"
                " URL, e.g. OPENAI_BASE_URL=http://127.0.0.1:8000/v1"
            )
        if not base.startswith(("http://", "https://")):
            raise ModelLoadError(f"OPENAI_BASE_URL must start with http:// or https://, not {base!r}")
        engine = cls(
            base,
            settings.openai_model,
            settings.openai_api_key,
            settings.n_ctx,
            settings.max_tokens,
            settings.openai_timeout,
            settings.openai_parallel,
        )
        models = engine._list_models()
        if not engine.model:
            if not models:
                raise ModelLoadError(f"{base}/models lists no models: set OPENAI_MODEL to the model to use")
            engine.model = str(models[0]["id"])
        served = next((m for m in models if m.get("id") == engine.model), {})
        max_len = served.get("max_model_len")  # vLLM reports its context window
        if isinstance(max_len, int) and 0 < max_len < engine.n_ctx:
            engine.n_ctx = max_len
        engine._find_tokenizer()
        return engine

    def _list_models(self) -> list[dict[str, Any]]:
        url = f"{self.base_url}/models"
        try:
            response = self._http.get(url, timeout=CONNECT_TIMEOUT)
        except httpx.HTTPError as exc:
            raise ModelLoadError(
                f"cannot reach the remote model server at {url} ({type(exc).__name__}: {exc}):"
                " start it, or fix OPENAI_BASE_URL"
            ) from None
        if response.status_code in (401, 403):
            raise ModelLoadError(
                f"{url} refused the API key (HTTP {response.status_code}): set OPENAI_API_KEY"
            )
        if response.status_code != 200:
            raise ModelLoadError(
                f"{url} answered HTTP {response.status_code}: check OPENAI_BASE_URL"
                " (for vLLM and llama.cpp it ends in /v1)"
            )
        try:
            data = response.json()["data"]
            return [m for m in data if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise ModelLoadError(
                f"{url} did not answer with an OpenAI model list: check OPENAI_BASE_URL"
            ) from None

    # -- tokens ----------------------------------------------------------------------------

    @property
    def _root(self) -> str:
        """The server root, where tokenize endpoints live (outside `/v1`)."""
        return self.base_url.removesuffix("/v1")

    def _find_tokenizer(self) -> None:
        for tokenizer in TOKENIZERS:
            self._tokenizer = tokenizer
            baseline = self._remote_count("")
            if baseline is not None:
                self._special_tokens = baseline
                return
        self._tokenizer = None

    def _remote_count(self, text: str, http: httpx.Client | None = None) -> int | None:
        """Tokens the remote makes of `text` (with its BOS), or None if it cannot say."""
        if self._tokenizer is None:
            return None
        path, body, read = self._tokenizer
        try:
            response = (http or self._count_http).post(f"{self._root}{path}", json=body(self.model, text))
            if response.status_code != 200:
                return None
            return read(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def estimate_tokens(text: str) -> int:
        """A conservative guess when the remote cannot count: one token per three bytes."""
        return -(-len(text.encode("utf-8")) // 3)

    def count_tokens(self, text: str) -> int:
        n = self._remote_count(text)
        return self.estimate_tokens(text) if n is None else max(0, n - self._special_tokens)

    # -- generation ------------------------------------------------------------------------

    def _request(self, prompt: str, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": params.max_tokens or self.max_tokens,
            "temperature": DEFAULT_TEMPERATURE if params.temperature is None else params.temperature,
            "top_p": DEFAULT_TOP_P if params.top_p is None else params.top_p,
            "stop": list(STOP_MARKERS),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if self._send_extras:
            if params.top_k is not None:
                body["top_k"] = params.top_k
            if params.repeat_penalty is not None:
                body["repeat_penalty"] = params.repeat_penalty  # llama.cpp
                body["repetition_penalty"] = params.repeat_penalty  # vLLM, TGI
        return body

    def stream(self, prompt: str, params: SamplingParams, gen: Generation) -> Iterator[str]:
        url = f"{self.base_url}/completions"
        n = self._remote_count(prompt, self._http)
        gen.prompt_tokens = gen.prompt_tokens_evaluated = self.estimate_tokens(prompt) if n is None else n
        body = self._request(prompt, params)
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code in (400, 422) and ("top_k" in body or "repeat_penalty" in body):
                    # a strict server (OpenAI itself) refuses fields it does not know: go without
                    response.read()
                    self._send_extras = False
                    yield from self.stream(prompt, params, gen)
                    return
                if response.status_code != 200:
                    response.read()
                    raise EngineError(
                        f"the remote model server at {url} answered HTTP {response.status_code}:"
                        f" {_error_text(response)}"
                    )
                yield from self._read_events(response, gen, url)
        except httpx.TimeoutException:
            raise EngineError(f"the remote model server at {url} timed out (OPENAI_TIMEOUT)") from None
        except httpx.HTTPError as exc:
            raise EngineError(
                f"lost the remote model server at {url} ({type(exc).__name__}: {exc})"
            ) from None

    def _read_events(self, response: httpx.Response, gen: Generation, url: str) -> Iterator[str]:
        counted = 0
        finished = False
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments, `event:` names
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise EngineError(
                    f"the remote model server at {url} sent a malformed event: {data[:100]}"
                ) from None
            if not isinstance(chunk, dict):
                continue
            error = chunk.get("error")
            if error:
                message = error.get("message", error) if isinstance(error, dict) else error
                raise EngineError(f"the remote model server failed: {message}")
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                gen.prompt_tokens = int(usage.get("prompt_tokens") or gen.prompt_tokens)
                gen.prompt_tokens_evaluated = gen.prompt_tokens
                gen.completion_tokens = int(usage.get("completion_tokens") or gen.completion_tokens)
            for choice in chunk.get("choices") or ():
                text = choice.get("text") or ""
                if text:
                    counted += 1
                    gen.completion_tokens = max(gen.completion_tokens, counted)
                    yield text
                reason = choice.get("finish_reason")
                if reason:
                    finished = True
                    gen.finish_reason = "length" if reason == "length" else "stop"
        else:
            if not finished:
                raise EngineError(f"the remote model server at {url} ended the stream mid-answer")

    def close(self) -> None:
        self._http.close()
        self._count_http.close()
