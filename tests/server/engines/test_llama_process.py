"""A model's child process: a load that kills it is a failed load (and we go on), and an engine's
model is mapped in its process, which ends with the engine. (What llama.cpp says of a file it
refuses reaching the error is tested with a projector in test_vision.)"""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path
from typing import Any

from server.engines.llama_cpp_engine import LlamaCppEngine
from server.engines.llama_process import DYING_S, LlamaProcess
from server.settings import Settings
from tests import tinymodels as tm


def dies_while_loading() -> Any:
    """A builder that ends its process, as llama.cpp aborting on a damaged file does."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file left behind
    os.abort()


def test_a_load_that_kills_its_process_is_a_failed_load_and_leaves_nothing() -> None:
    process = LlamaProcess(dies_while_loading)
    assert not process.ok
    assert "exit status -6" in process.said  # SIGABRT: named in the error, and we go on
    assert not Path(f"/proc/{process.pid}").exists()  # reaped, no zombie left


def test_the_engines_process_holds_the_model_and_ends_with_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tm.write_gguf(path, "f32")
    engine = LlamaCppEngine(path, n_ctx=512, kv_pool=512, parallel=1, threads=1, n_gpu_layers=0, cache_ram_mib=0,
                            prompt_template="auto", speculative="off", speculative_draft=Settings.speculative_draft)
    pid = engine._process.pid
    assert pid != os.getpid()
    assert str(path) in Path(f"/proc/{pid}/maps").read_text()  # the model is mapped there, not here
    assert str(path) not in Path("/proc/self/maps").read_text()
    engine.close()
    assert not Path(f"/proc/{pid}").exists()



def test_a_killed_process_says_so_as_soon_as_it_is_killed(tmp_path: Path) -> None:
    """Its sockets close before its exit status can be read: the error written at that moment
    must still name the kill."""
    path = tmp_path / "tiny.gguf"
    tm.write_gguf(path, "f32")
    engine = LlamaCppEngine(path, n_ctx=512, kv_pool=512, parallel=1, threads=1, n_gpu_layers=0, cache_ram_mib=0,
                            prompt_template="auto", speculative="off", speculative_draft=Settings.speculative_draft)
    try:
        assert engine.ended() == ""
        os.kill(engine._process.pid, signal.SIGKILL)
        assert engine._process.ended(DYING_S) == "the model's process ended (killed by signal 9)"
        assert engine.ended() == "the model's process ended (killed by signal 9)"
    finally:
        engine.close()
