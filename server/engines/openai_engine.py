"""A remote OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, TGI) as the engine.

Two ways to prompt it (OPENAI_PROMPT):

- chat: the messages go to the remote's `/chat/completions`, whose chat template (the model's own)
  renders them; the answer streams back as `choices[0].delta.content`, and a thinking model's
  reasoning, where the remote parses it out, as `delta.reasoning_content` (earlier thoughts are
  not sent back: what remotes do with them varies).
- text: the seed's `### Human` template is rendered here and sent to `/completions`, with its
  role markers as the `stop` hint.
- auto: decided once, at `connect`: chat, unless the remote clearly has no chat template of its
  own (see `OpenAIEngine._remote_has_chat_template`).

The remote parses control-token text (`<end_of_turn>`, `<|im_end|>`) anywhere in what it is
given, so such text in a message is defused first (`defuse`). Our stop filter runs above the
engine either way, so a marker the model spells out never reaches a user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from server.engines.base import (
    EngineError,
    Generation,
    ModelLoadError,
    Piece,
    Prompt,
    PromptTemplate,
    Text,
    Thought,
    Usage,
)
from server.prompt import SEED, STOP_MARKERS, TURN_MARKERS, build_prompt, defuse, merge_turns
from server.sampling import Sampling
from server.settings import Settings
from wire.types import Message

CONNECT_TIMEOUT = 5.0


# The template llama.cpp's server falls back to when the GGUF has none (common/chat.cpp,
# CHATML_TEMPLATE_SRC): a remote reporting it has no chat template of the model's own.
LLAMA_CPP_FALLBACK_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)
# what vLLM and TGI say when asked to chat with a model that has no chat template
_NO_TEMPLATE = re.compile(r"chat[ _]template|template not found|no template", re.IGNORECASE)

# Token counters: (path, under the server root (True) or the base URL, request body, reader)
Counter = tuple[str, bool, Callable[[str, Any], dict[str, Any]], Callable[[Any], int]]
TEXT_COUNTERS: tuple[Counter, ...] = (
    # llama.cpp's server: special-token text parsed and BOS added, as for a prompt
    ("/tokenize", True, lambda model, text: {"content": text, "add_special": True}, lambda r: len(r["tokens"])),
    # vLLM
    ("/tokenize", True, lambda model, text: {"model": model, "prompt": text}, lambda r: int(r["count"])),
)
CHAT_COUNTERS: tuple[Counter, ...] = (
    # llama.cpp's server: the chat rendered with its template, then tokenized
    ("/chat/completions/input_tokens", False, lambda model, messages: {"model": model, "messages": messages},
     lambda r: int(r["input_tokens"])),
    # vLLM
    ("/tokenize", True,
     lambda model, messages: {"model": model, "messages": messages, "add_generation_prompt": True},
     lambda r: int(r["count"])),
)
EXTRAS = ("top_k", "repeat_penalty", "repetition_penalty")  # sampling fields beyond OpenAI's own
MAX_SLOTS = 1024  # the most answers at once a remote's own slot count is believed for (as OPENAI_PARALLEL's bound)


@dataclass(frozen=True)
class Hints:
    """The settings an operator fixes when a remote cannot be used: its URL's and its key's."""

    url: str
    key: str


OPENAI_HINTS = Hints("OPENAI_BASE_URL", "OPENAI_API_KEY")
PROBE_CHAT = [{"role": "user", "content": "Hello"}]


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


def context_window(listed: dict[str, Any], n_ctx: int) -> int:
    """A chat's window on a model as its server lists it (`GET /v1/models`): the model's own if
    the server says, N_CTX (`n_ctx`) if that is less. vLLM reports its context window, llama.cpp's
    server the context of one slot."""
    meta = listed.get("meta")
    for window in (listed.get("max_model_len"), meta.get("n_ctx") if isinstance(meta, dict) else None):
        if isinstance(window, int) and 0 < window < n_ctx:
            n_ctx = window
    return n_ctx


def estimate_tokens(text: str) -> int:
    """A conservative guess when the remote cannot count: one token per three bytes."""
    return -(-len(text.encode("utf-8")) // 3)


def estimate_chat_tokens(messages: Sequence[dict[str, str]]) -> int:
    """The guess for a chat: bytes / 3 of it written out in ChatML."""
    return estimate_tokens("".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)) + 4


class OpenAIEngine:
    name = "openai"
    supports: frozenset[str] = frozenset()

    def __init__(
        self, settings: Settings, *, transport: httpx.BaseTransport | None = None, hints: Hints = OPENAI_HINTS
    ) -> None:
        """The engine with no word from the remote yet; `connect` asks it what it serves."""
        self.base_url = settings.openai_base_url.rstrip("/")
        self.served = settings.openai_model  # the remote's name for the model, which requests carry
        self.model = self.served  # ours, which answers are recorded under
        self.n_ctx = settings.n_ctx
        # answers streamed at once: the remote's slots (llama-server --parallel N), or vLLM's batch
        self.parallel = settings.openai_parallel
        self.chat = settings.openai_prompt != "text"
        self.template = PromptTemplate("the remote's chat template", self.base_url) if self.chat else SEED
        self.hints = hints
        self._headers = {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
        self._timeout = httpx.Timeout(settings.openai_timeout, connect=CONNECT_TIMEOUT)
        self._transport = transport
        # One client for the answers (as many connections as answers run), one for counting,
        # which runs on the event loop's helper threads while answers stream.
        self._http = self._answers_client()
        self._count_http = httpx.Client(headers=self._headers, timeout=self._timeout, transport=transport)
        self._counter: Counter | None = None
        self._send_extras = True  # top_k / repeat_penalty, until the remote refuses them

    def _answers_client(self) -> httpx.Client:
        return httpx.Client(
            headers=self._headers, timeout=self._timeout, transport=self._transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=self.parallel),
        )

    @property
    def capacity(self) -> int:
        """The remote manages its own memory: never hold an answer back for lack of room here."""
        return self.n_ctx * self.parallel

    @property
    def _root(self) -> str:
        """The server root, where llama.cpp's and vLLM's own endpoints live (outside `/v1`)."""
        return self.base_url.removesuffix("/v1")

    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        shown_as: str = "",
        hints: Hints = OPENAI_HINTS,
    ) -> OpenAIEngine:
        """Check that the remote answers, pick its model and how to prompt it; `ModelLoadError`
        says how to fix what is wrong (`hints`: the settings to fix). `shown_as`: the name its
        answers go by here (default: the remote's own)."""
        base = settings.openai_base_url.rstrip("/")
        if not base:
            raise ModelLoadError(
                "ENGINE=openai needs OPENAI_BASE_URL: set it to the remote server's OpenAI-compatible"
                " URL, e.g. OPENAI_BASE_URL=http://127.0.0.1:8000/v1"
            )
        if not base.startswith(("http://", "https://")):
            raise ModelLoadError(f"OPENAI_BASE_URL must start with http:// or https://, not {base!r}")
        engine = cls(settings, transport=transport, hints=hints)
        try:
            models = engine._list_models()
            if not engine.served:
                if not models:
                    raise ModelLoadError(f"{base}/models lists no models: set OPENAI_MODEL to the model to use")
                engine.served = str(models[0]["id"])
            engine.model = shown_as or engine.served
            engine.n_ctx = context_window(next((m for m in models if m.get("id") == engine.served), {}), engine.n_ctx)
            props = engine._props()
            slots = props.get("total_slots")
            if isinstance(slots, int) and 0 < slots <= MAX_SLOTS and slots != engine.parallel:
                engine.parallel = slots  # the remote's own count wins over OPENAI_PARALLEL's guess
                engine._http.close()
                engine._http = engine._answers_client()
            if settings.openai_prompt == "auto" and not engine._remote_has_chat_template(props):
                engine.chat, engine.template = False, SEED
            engine._counter = engine._find_counter()
        except BaseException:
            engine.close()
            raise
        return engine

    def _list_models(self) -> list[dict[str, Any]]:
        url = f"{self.base_url}/models"
        try:
            response = self._count_http.get(url, timeout=CONNECT_TIMEOUT)
        except httpx.HTTPError as exc:
            raise ModelLoadError(
                f"cannot reach the remote model server at {url} ({type(exc).__name__}: {exc}):"
                f" start it, or fix {self.hints.url}"
            ) from None
        if response.status_code in (401, 403):
            raise ModelLoadError(f"{url} refused the API key (HTTP {response.status_code}): set {self.hints.key}")
        if response.status_code != 200:
            raise ModelLoadError(
                f"{url} answered HTTP {response.status_code}: check {self.hints.url}"
                " (for vLLM and llama.cpp it ends in /v1)"
            )
        try:
            data = response.json()["data"]
            return [m for m in data if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            raise ModelLoadError(f"{url} did not answer with an OpenAI model list: check {self.hints.url}") from None

    def _props(self) -> dict[str, Any]:
        """llama.cpp's `GET /props` (its template, its slots); {} from a server without it."""
        try:
            response = self._count_http.get(f"{self._root}/props", timeout=CONNECT_TIMEOUT)
            props = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}
        return props if isinstance(props, dict) else {}

    def _remote_has_chat_template(self, props: dict[str, Any]) -> bool:
        """OPENAI_PROMPT=auto: False only when the remote clearly has no chat template of the
        model's own. llama.cpp's server reports its template at `GET /props`: none, or its
        ChatML fallback (what it uses when the GGUF has none), means no. Other servers get a
        one-token chat: refused with words about a missing chat template (vLLM, TGI) or with
        404/405 (no chat endpoint), means no. Anything else means yes."""
        template = props.get("chat_template")
        if isinstance(template, str):
            return template.strip() not in ("", LLAMA_CPP_FALLBACK_TEMPLATE)
        body = {"model": self.served, "messages": PROBE_CHAT, "max_tokens": 1}
        try:
            response = self._count_http.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.HTTPError:
            return True
        if response.status_code in (404, 405):
            return False
        return response.status_code == 200 or not _NO_TEMPLATE.search(_error_text(response))

    # -- prompts and tokens ----------------------------------------------------------------

    def _find_counter(self) -> Counter | None:
        """The first of the known tokenizer endpoints that counts a probe prompt."""
        probe: Any = PROBE_CHAT if self.chat else build_prompt([Message(True, "Hello")])
        for counter in CHAT_COUNTERS if self.chat else TEXT_COUNTERS:
            n = self._count(counter, probe)
            if n is not None and n > 0:
                return counter
        return None

    def _count(self, counter: Counter, prompt: Any) -> int | None:
        """Tokens the remote makes of `prompt` (BOS and template included), or None if it cannot say."""
        path, at_root, body, read = counter
        url = f"{self._root if at_root else self.base_url}{path}"
        try:
            response = self._count_http.post(url, json=body(self.served, prompt))
            return read(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def render(self, messages: Sequence[Message], system: str | None) -> Prompt:
        payload: Any
        if self.chat:
            payload = [{"role": "system", "content": defuse(system.strip())}] if system and system.strip() else []
            payload += [
                {"role": "user" if m.user else "assistant", "content": defuse(m.text.strip())}
                for m in merge_turns(messages)
            ]
            estimate = estimate_chat_tokens(payload)
            stops: tuple[str, ...] = TURN_MARKERS  # harmless as text: hidden if the model spells one out
        else:
            payload = build_prompt([Message(m.user, defuse(m.text)) for m in messages], system and defuse(system))
            estimate = estimate_tokens(payload)
            stops = STOP_MARKERS
        n = self._count(self._counter, payload) if self._counter else None
        return Prompt(estimate if n is None else n, stops, payload)

    # -- answers ---------------------------------------------------------------------------

    def _request(self, prompt: Prompt, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.served}
        if self.chat:
            body["messages"] = prompt.payload
        else:
            body["prompt"] = prompt.payload
            body["stop"] = list(STOP_MARKERS)
        body.update(
            max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
            stream=True, stream_options={"include_usage": True},
        )
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self._send_extras:
            body["top_k"] = sampling.top_k
            body["repeat_penalty"] = sampling.repeat_penalty  # llama.cpp
            body["repetition_penalty"] = sampling.repeat_penalty  # vLLM, TGI
        return body

    def stream(self, prompt: Prompt, sampling: Sampling) -> Generation:
        usage = Usage(prompt_tokens=prompt.n_tokens, prompt_tokens_evaluated=prompt.n_tokens)
        return Generation(self._answer(prompt, sampling, usage), usage)

    def _answer(self, prompt: Prompt, sampling: Sampling, usage: Usage) -> Generator[Piece, None, None]:
        url = f"{self.base_url}/chat/completions" if self.chat else f"{self.base_url}/completions"
        body = self._request(prompt, sampling)
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code in (400, 422) and "top_k" in body:
                    # a strict server (OpenAI itself) refuses fields it does not know: ask again
                    # without them, and leave them out from then on if that is accepted
                    response.read()
                    body = {k: v for k, v in body.items() if k not in EXTRAS}
                    with self._http.stream("POST", url, json=body) as retry:
                        if retry.status_code != 200:
                            retry.read()
                            raise self._http_error(url, retry)
                        self._send_extras = False
                        yield from self._read_events(retry, usage, url)
                        return
                if response.status_code != 200:
                    response.read()
                    raise self._http_error(url, response)
                yield from self._read_events(response, usage, url)
        except httpx.TimeoutException:
            raise EngineError(
                f"the remote model server at {url} sent nothing for {self._http.timeout.read} s (OPENAI_TIMEOUT):"
                " it timed out"
            ) from None
        except httpx.HTTPError as exc:
            raise EngineError(f"lost the remote model server at {url} ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _http_error(url: str, response: httpx.Response) -> EngineError:
        return EngineError(
            f"the remote model server at {url} answered HTTP {response.status_code}: {_error_text(response)}"
        )

    def _read_events(self, response: httpx.Response, usage: Usage, url: str) -> Generator[Piece, None, None]:
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
                raise EngineError(f"the remote model server at {url} sent a malformed event: {data[:100]}") from None
            if not isinstance(chunk, dict):
                raise EngineError(f"the remote model server at {url} sent a malformed event: {data[:100]}")
            error = chunk.get("error")
            if error:
                message = error.get("message", error) if isinstance(error, dict) else error
                raise EngineError(f"the remote model server failed: {message}")
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict):
                    continue
                reasoning, text = self._texts(choice)
                if reasoning or text:
                    counted += 1
                    usage.completion_tokens = max(usage.completion_tokens, counted)
                if reasoning:
                    yield Thought(reasoning)
                if text:
                    yield Text(text)
                reason = choice.get("finish_reason")
                if reason:
                    finished = True
                    usage.finish_reason = "length" if reason == "length" else "stop"
            self._read_usage(chunk, usage)
        else:
            if not finished:
                raise EngineError(f"the remote model server at {url} ended the stream mid-answer")

    def _texts(self, choice: dict[str, Any]) -> tuple[str, str]:
        """A streamed choice's reasoning and answer text ("" for none or a malformed field)."""
        delta = choice.get("delta")
        if not self.chat:
            reasoning, text = None, choice.get("text")
        elif isinstance(delta, dict):
            # reasoning apart from the answer: llama.cpp and older vLLM name it reasoning_content
            reasoning, text = delta.get("reasoning_content") or delta.get("reasoning"), delta.get("content")
        else:
            reasoning = text = None
        return (reasoning if isinstance(reasoning, str) else ""), (text if isinstance(text, str) else "")

    @staticmethod
    def _read_usage(chunk: dict[str, Any], usage: Usage) -> None:
        counts = chunk.get("usage")
        if not isinstance(counts, dict):
            return
        try:
            usage.prompt_tokens = int(counts.get("prompt_tokens") or usage.prompt_tokens)
            usage.completion_tokens = int(counts.get("completion_tokens") or usage.completion_tokens)
            details = counts.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            timings = chunk.get("timings")  # llama.cpp: prompt_n is what it evaluated
            if isinstance(timings, dict) and isinstance(timings.get("prompt_n"), int):
                usage.prompt_tokens_evaluated = timings["prompt_n"]
            elif isinstance(cached, int):
                usage.prompt_tokens_evaluated = max(0, usage.prompt_tokens - cached)
            else:
                usage.prompt_tokens_evaluated = usage.prompt_tokens
        except (TypeError, ValueError):
            pass  # counts we cannot read leave ours

    def close(self) -> None:
        self._http.close()
        self._count_http.close()
