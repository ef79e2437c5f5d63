"""6. The limit: memory bandwidth over the model's bytes per token bounds the decode rate.

Decoding one token reads every weight once (Gemma 3 ties its output matrix to the token
embeddings, so even the embedding table is read in full for the logits), so bytes per token is
the model's tensor size (the GGUF file's tensor data) plus the KV cache read,
which is negligible at these context lengths. Bandwidth is measured as a large numpy copy
(counted as bytes read plus bytes written, as STREAM's Copy does) on one thread and on every core
(numpy releases the GIL while copying); the better of the two is the bound's bandwidth.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import summary
from server.engines.gguf import read_header


def copy_bandwidth(nbytes: int, threads: int, reps: int) -> list[float]:
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if len(p)]
    results = []
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(reps + 1):  # the first pass faults the pages in; not counted
            t0 = time.perf_counter()
            list(pool.map(lambda b: np.copyto(dst[b[0]:b[1]], src[b[0]:b[1]]), bounds))
            results.append(2 * src.nbytes / (time.perf_counter() - t0))
    return results[1:]


def run(model: Path, engine_decode_tps: float | None, mib: int = 512, reps: int = 5) -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    one = copy_bandwidth(mib << 20, 1, reps)
    every = copy_bandwidth(mib << 20, cpus, reps)
    best = max(summary(one)["median"], summary(every)["median"])
    weights = model.stat().st_size - read_header(model).data_start  # bytes of all tensors
    bound = best / weights
    return {
        "array_mib": mib,
        "copy_gbps_1_thread": summary([x / 1e9 for x in one], 2),
        f"copy_gbps_{cpus}_threads": summary([x / 1e9 for x in every], 2),
        "bandwidth_gbps_used": round(best / 1e9, 2),
        "bytes_per_token": weights,
        "bound_tps": round(bound, 1),
        "engine_decode_tps": engine_decode_tps,
        "engine_fraction_of_bound": round(engine_decode_tps / bound, 3) if engine_decode_tps else None,
    }
