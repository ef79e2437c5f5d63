"""The ctransformers engine on tiny llama files written by `tinymodels` (GGJT v3 and GGUF v3).

Whatever could kill the process (native tokenizer overruns, native loader crashes) runs in a
subprocess, so a regression fails one test instead of the whole session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engines.base import EngineError, Generation, ModelLoadError, Piece, Prompt, Text, Usage
from server.engines.ctransformers_engine import CTransformersEngine, resolve_lib
from server.sampling import REPEAT_PENALTY, TEMPERATURE, Sampling, resolve
from tests import tinymodels as tm
from tests.harness import text_pieces
from wire.types import SamplingParams

ROOT = Path(__file__).resolve().parents[3]
PROMPT = (
    "A chat between a human and an assistant.\n"
    "### Assistant:Hello - How may I help you today?\n"
    "### Human:What is the capital of France?\n"
    "### Assistant:"
)
WORLD = "你好，世界！🌍🎉 こんにちは 👩‍👩‍👧 " * 3
GREEDY = Sampling(max_tokens=512, temperature=0.0)

MODELS: dict[str, Callable[[Path], tm.Spec]] = {
    "ggjt-f32": lambda p: tm.write_ggjt(p, "f32"),
    "ggjt-f16": lambda p: tm.write_ggjt(p, "f16"),
    "ggjt-q8_0": lambda p: tm.write_ggjt(p, "q8_0"),
    "gguf-f32": lambda p: tm.write_gguf(p, "f32"),
    "gguf-f16": lambda p: tm.write_gguf(p, "f16"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    paths = {}
    for name, write in MODELS.items():
        paths[name] = d / f"{name}.bin"
        write(paths[name])
    return paths


def load(path: Path, **kw: Any) -> CTransformersEngine:
    kw.setdefault("model_type", "llama")
    kw.setdefault("threads", 1)
    kw.setdefault("n_ctx", 512)
    return CTransformersEngine(path, **kw)


def start(engine: CTransformersEngine, text: str, sampling: Sampling = GREEDY) -> Generation:
    """An answer to `text` as it stands (no template), with BOS as the model wants."""
    tokens = engine.tokenize(text, add_bos=engine.add_bos)
    return engine.stream(Prompt(len(tokens), (), tokens), sampling)


def run(engine: CTransformersEngine, text: str, sampling: Sampling = GREEDY) -> tuple[list[str], Usage]:
    answer = start(engine, text, sampling)
    return text_pieces(answer), answer.usage


def prompt_tokens(kind: str, prompt: str) -> int:
    """Tokens (with BOS) the tiny models give `prompt`: one byte token per UTF-8 byte; GGUF adds
    a space in front and writes each space as the three bytes of `▁`."""
    if kind.startswith("gguf"):
        prompt = (" " + prompt).replace(" ", tm.SPM_SPACE)
    return 1 + len(prompt.encode())


def isolated(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with glibc's heap checks on."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", MALLOC_CHECK_="3")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- the tiny models themselves ------------------------------------------------------------------


def test_tinymodels_are_small_fast_and_predictable(tmp_path: Path) -> None:
    for name, write in MODELS.items():
        spec = write(tmp_path / name)
    assert max(p.stat().st_size for p in tmp_path.iterdir()) < 400_000
    # The table the weights encode: ':' (the template's last byte) starts the answer.
    ids = spec.greedy(tm.byte_tokens(":")[-1])
    assert b"".join(spec.pieces[spec.piece_ids.index(t)] for t in ids).decode() == tm.CONTINUATION
    assert tm.CONTINUATION == "Paris is lovely.\n### Human:"


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MODELS))
def test_greedy_answer_is_known(models: dict[str, Path], kind: str) -> None:
    engine = load(models[kind])
    pieces, gen = run(engine, PROMPT)
    assert "".join(pieces) == tm.CONTINUATION
    text = "".join(pieces)
    assert text[: text.index(tm.STOP_MARKER)] == tm.ANSWER
    # The stop marker arrives split over several pieces: the stop filter has work to do.
    assert tm.STOP_MARKER not in pieces and len([p for p in pieces if p in tm.STOP_MARKER]) >= 2
    assert gen.finish_reason == "stop"
    assert gen.completion_tokens == len(pieces) == 5
    assert gen.prompt_tokens == prompt_tokens(kind, PROMPT)
    assert engine.count_tokens(PROMPT) == prompt_tokens(kind, PROMPT) - 1  # without BOS
    assert engine.n_ctx == 512 and engine.name == "ctransformers" and engine.model == models[kind].name


@pytest.mark.parametrize("kind", ["ggjt-f16", "gguf-f16"])
def test_chinese_and_emoji_prompt_answers(models: dict[str, Path], kind: str) -> None:
    engine = load(models[kind])
    prompt = f"### Human:{WORLD}\n### Assistant:"
    pieces, gen = run(engine, prompt)
    assert "".join(pieces) == tm.CONTINUATION
    # Byte fallback: many more tokens than characters (the trap), all of them counted.
    assert gen.prompt_tokens == prompt_tokens(kind, prompt) > 2 * len(prompt)
    assert engine.count_tokens(WORLD) == prompt_tokens(kind, WORLD) - 1


def test_tokenize_trap_is_real_and_avoided(models: dict[str, Path]) -> None:
    """ctransformers' own `tokenize` overruns its buffer on such text (the process dies, or at
    best the tokens come back cut short); the engine tokenizes it intact, many times, and answers."""
    text = WORLD * 60
    expected = prompt_tokens("gguf", text)
    control = isolated(f"""
        import ctransformers
        from server.engines.ctransformers_engine import resolve_lib
        llm = ctransformers.AutoModelForCausalLM.from_pretrained(
            {str(models["gguf-f16"])!r}, model_type="llama", lib=resolve_lib())
        for _ in range(20):
            n = len(llm.tokenize({text!r}))
        print("TOKENS", n)
    """)
    assert control.returncode != 0 or f"TOKENS {expected}" not in control.stdout
    for kind in ("ggjt-q8_0", "gguf-f16"):
        ours = isolated(f"""
            from server.engines.ctransformers_engine import CTransformersEngine
            from server.engines.base import Prompt
            from server.sampling import Sampling
            e = CTransformersEngine({str(models[kind])!r}, "llama", threads=1, n_ctx=4096)
            for _ in range(20):
                n = e.count_tokens({text!r})
            tokens = e.tokenize({WORLD!r} + "\\n### Assistant:", add_bos=True)
            answer = e.stream(Prompt(len(tokens), (), tokens), Sampling(max_tokens=512, temperature=0))
            out = "".join(p.text for p in answer)
            print("TOKENS", n + 1)
            print("ANSWER", repr(out))
        """)
        assert ours.returncode == 0, ours.stderr[-2000:]
        assert f"TOKENS {prompt_tokens(kind, text)}" in ours.stdout
        assert f"ANSWER {tm.CONTINUATION!r}" in ours.stdout


def test_odd_text_does_not_break_tokenizing(models: dict[str, Path]) -> None:
    engine = load(models["ggjt-f16"])
    assert engine.count_tokens("a\x00b") == 2  # NUL would end the C string: dropped
    assert engine.count_tokens("\ud800") == 1  # a lone surrogate cannot be encoded: '?'
    assert engine.count_tokens("") == 0
    all_bytes = "".join(chr(c) for c in range(1, 256))
    assert engine.count_tokens(all_bytes) == len(all_bytes.encode())
    assert "".join(run(engine, all_bytes + ":")[0]) == tm.CONTINUATION


# --- streaming whole characters, limits ----------------------------------------------------------

SPLIT = [b"Caf\xc3", b"\xa9 \xe4\xbd", b"\xa0\xf0\x9f", b"\x98\x80!"]  # "Café 你😀!", cut mid-character


def test_split_characters_are_held_until_whole(tmp_path: Path) -> None:
    path = tmp_path / "split.bin"
    tm.write_ggjt(path, "q8_0", continuation=SPLIT)
    engine = load(path)
    pieces, gen = run(engine, PROMPT)
    assert pieces == ["Caf", "é ", "你", "😀!"]
    assert gen.completion_tokens == 4 and gen.finish_reason == "stop"
    # Cut off by max_tokens in the middle of "é": nothing half-made comes out.
    pieces, gen = run(engine, PROMPT, resolve(SamplingParams(temperature=0, max_tokens=1), 512))
    assert pieces == ["Caf"] and gen.finish_reason == "length" and gen.completion_tokens == 1
    assert all("\ufffd" not in p for p in pieces)


@pytest.mark.parametrize("kind", ["ggjt-f16", "gguf-f16"])
def test_max_tokens_gives_length(models: dict[str, Path], kind: str) -> None:
    engine = load(models[kind])
    pieces, gen = run(engine, PROMPT, resolve(SamplingParams(temperature=0, max_tokens=2), 512))
    assert "".join(pieces) == "Paris is"
    assert gen.finish_reason == "length" and gen.completion_tokens == 2


def test_context_window_is_never_overrun(models: dict[str, Path]) -> None:
    engine = load(models["ggjt-f16"], n_ctx=64)
    assert engine.n_ctx == 64
    with pytest.raises(EngineError, match="takes 65 tokens.*holds 64"):
        run(engine, "x" * 63 + ":")
    pieces, gen = run(engine, "x" * 60 + ":")  # 62 tokens with BOS: room for 2
    assert "".join(pieces) == "Paris is" and gen.finish_reason == "length"


# --- sampling parameters -------------------------------------------------------------------------


class SampleSpy:
    """Wraps the native library and records the arguments of each sample call."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.calls: list[tuple[Any, ...]] = []

    def ctransformers_llm_sample(self, *args: Any) -> int:
        self.calls.append(args[3:])  # top_k, top_p, temperature, repeat_penalty, seed
        token: int = self.lib.ctransformers_llm_sample(*args)
        return token

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lib, name)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (resolve(SamplingParams(), 512), (40, 0.95, TEMPERATURE, REPEAT_PENALTY, -1)),
        (resolve(SamplingParams(temperature=0.0, top_k=50, seed=3), 512), (1, 0.95, 1.0, REPEAT_PENALTY, 3)),
        (
            resolve(SamplingParams(temperature=1.5, top_p=0.5, top_k=7, repeat_penalty=1.3, seed=42), 512),
            (7, 0.5, 1.5, 1.3, 42),
        ),
        (resolve(SamplingParams(top_k=0), 512), (tm.BYTE_BASE + 256 + 5, 0.95, TEMPERATURE, REPEAT_PENALTY, -1)),
    ],
)
def test_sampling_parameters_pass_through(
    models: dict[str, Path], params: Sampling, expected: tuple[Any, ...]
) -> None:
    engine = load(models["ggjt-f16"])
    spy = SampleSpy(engine._lib)
    engine._lib = spy
    pieces, gen = run(engine, PROMPT, params)
    assert "".join(pieces) == tm.CONTINUATION  # the margin is wide enough for any sampling
    assert len(spy.calls) == 6  # five pieces, then EOS
    for call in spy.calls:
        assert call == pytest.approx(expected)


def test_max_tokens_ends_an_answer_that_never_ends(tmp_path: Path) -> None:
    path = tmp_path / "loop.bin"
    spec = tm.write_ggjt(path, "q8_0", continuation=[b"ab\xc3\xa9", b"cd!"], loop=True)
    assert spec.greedy(tm.byte_tokens(":")[-1], n=6) == spec.piece_ids * 3  # never ends
    engine = load(path, n_ctx=2048)
    pieces, gen = run(engine, ":", Sampling(max_tokens=512))
    assert gen.completion_tokens == 512 and gen.finish_reason == "length"
    assert "".join(pieces) == "abécd!" * 256


# --- cancellation, one at a time, prefix reuse ---------------------------------------------------


def test_closing_the_generator_stops_generation(models: dict[str, Path]) -> None:
    engine = load(models["gguf-f16"])
    answer = start(engine, PROMPT)
    it: Iterator[Piece] = iter(answer)
    assert next(it) == Text("Paris")
    answer.close()
    assert answer.usage.completion_tokens == 1
    # Nothing ran after the close: the yielded token was never even evaluated.
    assert engine._past == engine.tokenize(PROMPT, add_bos=True)
    # The engine is free again and answers in full.
    assert "".join(run(engine, PROMPT)[0]) == tm.CONTINUATION


def test_one_generation_at_a_time(models: dict[str, Path]) -> None:
    engine = load(models["ggjt-f16"])
    first = iter(start(engine, PROMPT))
    assert next(first) == Text("Paris")
    with pytest.raises(EngineError, match="one generation at a time"):
        run(engine, PROMPT)
    assert "".join(text_pieces(first)) == tm.CONTINUATION[len("Paris") :]


def test_cached_prefix_is_not_evaluated_again(models: dict[str, Path]) -> None:
    engine = load(models["ggjt-f16"])
    pieces, first = run(engine, PROMPT)
    follow_up = PROMPT + tm.ANSWER + "\n### Human:And Rome?\n### Assistant:"
    pieces, second = run(engine, follow_up)
    assert "".join(pieces) == tm.CONTINUATION
    assert second.prompt_tokens == prompt_tokens("ggjt", follow_up)
    assert second.prompt_tokens_evaluated == second.prompt_tokens - first.prompt_tokens
    pieces, third = run(engine, "Something else:")
    assert third.prompt_tokens_evaluated == third.prompt_tokens - 1  # only BOS in common
    assert "".join(pieces) == tm.CONTINUATION


# --- loading -------------------------------------------------------------------------------------


def test_loading_never_probes_the_cpu(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """ctransformers' own CPU probe takes over a second per load; the library is resolved once."""
    resolve_lib()
    hits = resolve_lib.cache_info().hits
    assert resolve_lib() in ("avx2", "avx", "basic") or Path(resolve_lib()).is_file()
    assert resolve_lib.cache_info().hits == hits + 1  # cached
    import cpuinfo

    probes: list[str] = []

    def probe() -> dict[str, list[str]]:
        probes.append("probed")
        return {"flags": []}

    monkeypatch.setattr(cpuinfo, "get_cpu_info", probe)
    for kind in ("ggjt-q8_0", "gguf-f16"):
        assert load(models[kind]).n_ctx == 512
    assert probes == []
    import ctransformers  # the control: left to itself, ctransformers probes

    ctransformers.AutoModelForCausalLM.from_pretrained(str(models["ggjt-q8_0"]), model_type="llama")
    assert probes == ["probed"]


@pytest.mark.parametrize(
    ("make", "model_type", "message"),
    [
        (lambda d: d / "missing.bin", "llama", r"model file not found: .*missing\.bin"),
        (lambda d: d, "llama", "is a directory"),
        (
            lambda d: (d / "junk.bin").write_bytes(b"junk" * 10) and d / "junk.bin",
            "llama",
            "not a GGUF or GGML",
        ),
    ],
)
def test_load_errors_before_native_code(
    tmp_path: Path, make: Callable[[Path], Path], model_type: str, message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message):
        CTransformersEngine(make(tmp_path), model_type=model_type, n_ctx=512)


def test_native_load_crashes_become_load_errors(models: dict[str, Path], tmp_path: Path) -> None:
    """Each of these kills the process when handed to ctransformers as is (segfault or exit):
    checked in a subprocess that must survive them all."""
    gguf = models["gguf-f16"].read_bytes()
    ggjt = models["ggjt-f16"].read_bytes()
    cases = {
        "gguf-cut-header": (gguf[:1000], "llama"),
        "gguf-cut-data": (gguf[:60_000], "llama"),
        "gguf-garbage": (gguf[:4] + b"\x07" * 100, "llama"),
        "gguf-huge-counts": (gguf[:8] + b"\xff" * 100, "llama"),
        "gguf-as-gpt2": (gguf, "gpt2"),
        "gguf-as-gguf": (gguf, "gguf"),
        "ggjt-as-falcon": (ggjt, "falcon"),
        "ggjt-cut-data": (ggjt[:60_000], "llama"),
        "ggjt-bad-version": (ggjt[:4] + b"\x07" * 100, "LLaMA"),
    }
    paths = {}
    for name, (data, model_type) in cases.items():
        paths[name] = (str(tmp_path / f"{name}.bin"), model_type)
        Path(paths[name][0]).write_bytes(data)
    arch_path = tmp_path / "gpt2-arch.gguf"
    tm.write_gguf(arch_path, architecture="gpt2")
    paths["gguf-gpt2-arch"] = (str(arch_path), "llama")
    result = isolated(f"""
        import json
        from server.engines.ctransformers_engine import CTransformersEngine
        from server.engines.base import ModelLoadError
        out = {{}}
        for name, (path, model_type) in {paths!r}.items():
            try:
                CTransformersEngine(path, model_type=model_type, n_ctx=512, threads=1)
                out[name] = "LOADED"
            except ModelLoadError as e:
                out[name] = str(e)
        print(json.dumps(out))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    said = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (path, _) in paths.items():
        assert path in said[name], (name, said[name])
        assert "\n" not in said[name]
    assert "header is cut short" in said["gguf-cut-header"]
    assert "ends past the end of the file" in said["gguf-cut-data"]
    assert "GGUF version 117901063" in said["gguf-garbage"]
    assert "implausible tensor or metadata count" in said["gguf-huge-counts"]
    for name in ("gguf-as-gpt2", "gguf-as-gguf"):
        assert "only as MODEL_TYPE=llama" in said[name] and "ENGINE=llama-cpp" in said[name]
    assert "'ggjt'" in said["ggjt-as-falcon"] and "set MODEL_TYPE=llama" in said["ggjt-as-falcon"]
    # Failures the native loader reports itself: its words are kept in the message.
    assert "tensor 'norm.weight' is missing" in said["ggjt-cut-data"]
    assert "check MODEL_TYPE" in said["ggjt-cut-data"]
    assert "unknown (magic, version) combination" in said["ggjt-bad-version"]
    assert "architecture is 'gpt2'" in said["gguf-gpt2-arch"]
