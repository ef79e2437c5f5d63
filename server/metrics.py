"""Prometheus metrics at `/metrics`: requests, tokens, queue depth, first-token time, speed, draft acceptance."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from server.events import Done

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope: Scope) -> str:
    """The route that answered, by its declared path ("/api/answers/{answer_id}"), or "other":
    a client's paths never become labels of their own, so the series stay few."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "other"


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def key_label(name: str) -> str:
    """A key's name as configured (API_KEYS), so the series stay as few as the keys; "none": no key."""
    return name or "none"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "snake_llama_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.answers = Counter(
            "snake_llama_answers", "Answers finished, by model and stop reason", ["model", "stop_reason"], registry=r
        )
        self.tokens = Counter("snake_llama_tokens_generated", "Completion tokens generated", ["model"], registry=r)
        self.prompt_tokens = Counter(
            "snake_llama_prompt_tokens_evaluated", "Prompt tokens the model evaluated (after cache reuse)", ["model"],
            registry=r,
        )
        self.queue_depth = Gauge("snake_llama_queue_depth", "Requests waiting for the model", registry=r)
        self.answers_running = Gauge(
            "snake_llama_answers_running", "Answers of /api/converse not ended yet (waiting or generating)", registry=r
        )
        self.answers_unwatched = Gauge(
            "snake_llama_answers_unwatched",
            "Answers not ended that nobody reads: in their grace period (ANSWER_GRACE_S)",
            registry=r,
        )
        self.first_token = Histogram(
            "snake_llama_first_token_seconds",
            "Time from request to first token",
            ["model"],
            buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.speed = Histogram(
            "snake_llama_tokens_per_second",
            "Decode speed after the first token",
            ["model"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.key_requests = Counter("snake_llama_key_requests", "HTTP requests, by key name", ["key"], registry=r)
        self.key_answers = Counter("snake_llama_key_answers", "Answers finished, by key name", ["key"], registry=r)
        self.key_tokens = Counter(
            "snake_llama_key_tokens", "Prompt and completion tokens of finished answers, by key name", ["key", "kind"],
            registry=r,
        )
        self.key_queue_wait = Histogram(
            "snake_llama_key_queue_wait_seconds", "Time an answer waited for a slot, by key name", ["key"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=r,
        )
        self.draft_acceptance = Histogram(
            "snake_llama_draft_acceptance",
            "Speculative decoding: the share of drafted tokens the model kept, per answer that drafted any",
            ["model"],
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1),
            registry=r,
        )

    def observe_done(self, done: Done) -> None:
        """Called on the model thread when an answer ends (prometheus_client is thread-safe)."""
        key = key_label(done.key_name)
        self.key_answers.labels(key).inc()
        self.key_tokens.labels(key, "prompt").inc(done.prompt_tokens)
        self.key_tokens.labels(key, "completion").inc(done.completion_tokens)
        self.key_queue_wait.labels(key).observe(done.queue_s)
        self.answers.labels(done.model, done.stop_reason).inc()
        self.tokens.labels(done.model).inc(done.completion_tokens)
        self.prompt_tokens.labels(done.model).inc(done.prompt_tokens_evaluated)
        if done.ttft_s is not None:
            self.first_token.labels(done.model).observe(done.ttft_s)
        if done.tokens_per_s is not None:
            self.speed.labels(done.model).observe(done.tokens_per_s)
        if done.draft_acceptance is not None:
            self.draft_acceptance.labels(done.model).observe(done.draft_acceptance)

    async def endpoint(self, request: Request) -> Response:
        chats = request.app.state.chats
        self.queue_depth.set(chats.models.queue_depth)
        self.answers_running.set(chats.answers.running)
        self.answers_unwatched.set(chats.answers.unwatched)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
