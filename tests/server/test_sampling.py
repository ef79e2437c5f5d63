"""Sampling defaults: a request that leaves a knob out gets llama.cpp's own default for it."""

from __future__ import annotations

import xllamacpp
from pytest import approx

from server.sampling import Sampling, resolve
from wire.types import SamplingParams


def test_a_silent_request_samples_with_llama_cpps_defaults() -> None:
    engine = xllamacpp.CommonParams().sampling  # what llama.cpp's server gives a silent request
    sampling = resolve(SamplingParams(), 512)
    assert sampling.temperature == approx(engine.temp)
    assert sampling.top_p == approx(engine.top_p)
    assert sampling.top_k == engine.top_k
    assert sampling.repeat_penalty == approx(engine.penalty_repeat) == 1.0  # no penalty: lists and code repeat
    assert sampling.min_p == approx(engine.min_p)


def test_the_requests_own_values_win() -> None:
    asked = SamplingParams(max_tokens=9, temperature=0.0, top_p=0.5, top_k=3, repeat_penalty=1.3, seed=7)
    assert resolve(asked, 512) == Sampling(
        max_tokens=9, temperature=0.0, top_p=0.5, top_k=3, repeat_penalty=1.3, seed=7
    )
