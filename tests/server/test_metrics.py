"""`/metrics` (server.metrics): the request series are labelled by the route table, never by what
a client sends, so no client can grow them."""

from __future__ import annotations

import random
import string

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

from server.app import create_app
from server.metrics import METHODS
from server.settings import Settings


def request_series(url: str) -> set[tuple[str, str, str]]:
    """(method, route, status) of every `snake_llama_requests` series."""
    text = httpx.get(f"{url}/metrics").text
    return {(s.labels["method"], s.labels["route"], s.labels["status"])
            for family in text_string_to_metric_families(text) if family.name == "snake_llama_requests"
            for s in family.samples if s.name == "snake_llama_requests_total"}


def declared_paths() -> set[str]:
    app = create_app(Settings(), lambda: NotImplemented, lambda exc: None)  # never started: its routes only
    return {route.path for route in app.routes if isinstance(route, (Route, Mount))}


def test_random_paths_and_methods_share_the_other_labels(live_server: str) -> None:
    rng = random.Random(26)
    with httpx.Client(base_url=live_server, timeout=10) as client:
        client.get("/api/nothing")  # the "other" series exist before the flood
        client.request("BREW", "/")
        before = request_series(live_server)
        for i in range(300):
            path = "/" + "/".join("".join(rng.choices(string.ascii_letters, k=6)) for _ in range(rng.randint(1, 3)))
            method = rng.choice(["GET", "POST", "DELETE", "BREW", "PROPFIND", "X" * (i % 7 + 1)])
            assert client.request(method, path + f"?q={i}").status_code < 500
        after = request_series(live_server)
    assert {route for _, route, _ in after} <= declared_paths() | {"other"}
    assert {method for method, _, _ in after} <= METHODS | {"other"}
    grown = after - before
    assert len(grown) <= 8, grown  # a status or two per shared label, not a series per path
