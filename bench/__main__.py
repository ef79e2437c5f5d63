"""`python -m bench` (`make bench`): our server vs our engine alone vs llama.cpp's own server.

Runs every section (or those named with --only) on this machine, on the default model unless
--model says otherwise, and writes bench/results.json, bench/results.md and bench/results.png,
with every target ratio, whether it passed, and the worst one. Where `llama_cpp` is importable,
`python -m llama_cpp.server` is raced too (`--with-llama-cpp-python` installs it first).
Nothing leaves 127.0.0.1: every server binds to loopback on a free port.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    bandwidth,
    chat_switch,
    common,
    concurrency,
    decode,
    first_token,
    grammar,
    long_chat,
    memory,
    page,
    render,
    report,
    soak,
    speculative,
)
from bench.common import Stacks, machine_noise

SECTIONS = (
    "decode", "first_token", "concurrency", "page", "memory", "bandwidth", "render", "speculative", "grammar", "soak",
    "long_chat", "chat_switch",
)
HERE = Path(__file__).resolve().parent

# (full, quick) settings per section
PLAN: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "decode": ({"reps": 5, "n_tokens": 128}, {"reps": 2, "n_tokens": 48}),
    "first_token": ({"reps": 5, "chat_reps": 2}, {"reps": 2, "chat_reps": 1}),
    "concurrency": ({"reps": 5, "max_tokens": 24}, {"reps": 1, "max_tokens": 8}),
    "page": ({"reps": 3, "warm_per_cold": 2}, {"reps": 1, "warm_per_cold": 1}),
    "memory": ({"chats": 100, "max_tokens": 8}, {"chats": 20, "max_tokens": 4}),
    "bandwidth": ({"mib": 512, "reps": 5}, {"mib": 128, "reps": 2}),
    "render": ({"reps": 3}, {"reps": 1}),
    "speculative": ({"reps": 12, "agg_reps": 12},
                    {"reps": 1, "rewrite_tokens": 64, "chat_tokens": 32, "agg_tokens": 16, "agg_reps": 1}),
    "grammar": ({"reps": 3}, {"reps": 1}),
    "soak": ({"minutes": 30.0}, {"minutes": 1.0}),
    "long_chat": ({"reps": 2, "past": 20}, {"reps": 1, "past": 6}),
    "chat_switch": ({"reps": 10}, {"reps": 3}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats and short answers: a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated sections (default all): {','.join(SECTIONS)}")
    parser.add_argument("--model", help="GGUF model file (default: the embedded Gemma 3 270M)")
    parser.add_argument(
        "--threads", type=int, default=common.THREADS,
        help="llama.cpp threads for every stack (default: all cores, as the app uses). On a machine busy with"
        " other work, 1 avoids the collapse that spinning thread barriers suffer when cores are oversubscribed",
    )
    parser.add_argument(
        "--with-llama-cpp-python", action="store_true",
        help=f"pip-install llama-cpp-python[server]=={common.LCP_VERSION} into this environment (it compiles"
        " llama.cpp: several minutes) and race `python -m llama_cpp.server` too",
    )
    parser.add_argument("--out", default=str(HERE), help="folder for results.json/.md/.png (default bench/)")
    parser.add_argument(
        "--merge", action="store_true",
        help="put the sections run into the results.json already in --out (each stamped with when it ran)"
        " instead of replacing it: a section rerun on its own, beside the full run's others",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [s.strip().replace("-", "_") for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        print(f"bench: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if args.model:
        model = Path(args.model).expanduser().resolve()
    else:
        from server.default_model import default_model_path

        model = default_model_path()
    if args.with_llama_cpp_python and not install_llama_cpp_python():
        return 1
    common.THREADS = max(1, args.threads)  # read by every stack's start-up
    with_lcp = common.lcp_available()

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {name: PLAN[name][1 if args.quick else 0] for name in SECTIONS}
    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "model": model.name,
            "model_bytes": model.stat().st_size,
            "xllamacpp": version("xllamacpp"),
            "llama_cpp_python": version("llama-cpp-python") if with_lcp else None,
            "quick": args.quick,
            "threads": common.THREADS,
            "parallel": common.PARALLEL,
            "kv_pool": common.KV_POOL,
            "n_ctx": common.N_CTX,
            "sections": only,
            "settings": {k: v for k, v in settings.items() if k in only},
            "noise_before": machine_noise(),
            **machine_noise(),
        }
    }
    started = time.perf_counter()
    # a plain `kill` still runs the `finally` below, so no server is left behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stacks = Stacks(model, with_lcp=with_lcp)
    try:
        for name in SECTIONS:
            if name not in only:
                continue
            t0 = time.perf_counter()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            kw = settings[name]
            if name == "decode":
                results[name] = decode.run(stacks, **kw)
            elif name == "first_token":
                results[name] = first_token.run(stacks, **kw)
            elif name == "concurrency":
                results[name] = concurrency.run(stacks, **kw)
            elif name == "page":
                results[name] = page.run(stacks, **kw)
            elif name == "memory":
                results[name] = memory.run(model, **kw)
            elif name == "bandwidth":
                tps = results.get("decode", {}).get("stacks", {}).get("engine", {}).get("decode_tps", {}).get("median")
                if tps is None:  # decode not run: a few engine-only runs for the fraction
                    tps = decode.engine_only(stacks, reps=3 if args.quick else 5)
                results[name] = bandwidth.run(model, tps, **kw)
            elif name == "render":
                results[name] = render.run(**kw)
            elif name == "speculative":
                results[name] = speculative.run(stacks, **kw)
            elif name == "grammar":
                results[name] = grammar.run(stacks, **kw)
            elif name == "soak":
                results[name] = soak.run(model, **kw)
            elif name == "long_chat":
                results[name] = long_chat.run(stacks, **kw)
            elif name == "chat_switch":
                results[name] = chat_switch.run(stacks, **kw)
            results[name]["section_s"] = round(time.perf_counter() - t0, 1)
            print(f"bench: {name} done in {results[name]['section_s']} s", file=sys.stderr, flush=True)
    finally:
        stacks.close()
    results["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    results["meta"]["noise_after"] = machine_noise()
    if args.merge:
        results = merged(out_dir / "results.json", results)
    results["checks"] = report.checks(results)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md, png = report.write(results, out_dir)
    print(f"bench: wrote {out_dir / 'results.json'}, {md}" + (f", {png}" if png else ""), file=sys.stderr)
    print(md.read_text())
    return 0


def merged(path: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The results at `path` with this run's sections in place of theirs, each marked with when it ran."""
    if not path.exists():
        return run
    results: dict[str, Any] = json.loads(path.read_text())
    for name in run["meta"]["sections"]:
        results[name] = run[name] | {"run": run["meta"]["started"]}
    return results


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def install_llama_cpp_python() -> bool:
    """Install llama-cpp-python's server into this environment, unless that version is there."""
    if common.lcp_available() and version("llama-cpp-python") == common.LCP_VERSION:
        return True
    spec = f"llama-cpp-python[server]=={common.LCP_VERSION}"
    print(f"bench: installing {spec} (it compiles llama.cpp: several minutes) ...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=False)
    if done.returncode != 0:
        print(f"bench: pip could not install {spec}", file=sys.stderr)
        return False
    importlib.invalidate_caches()
    return True


if __name__ == "__main__":
    sys.exit(main())
