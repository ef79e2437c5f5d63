"""Which projector goes with which model in a folder, and which files are projectors at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.engines.base import ModelLoadError
from server.engines.projector import check_projector, is_projector, pair, shared_name
from tests.tinymodels import write_gguf
from tests.tinyprojector import write_projector


def test_a_projector_names_the_model_it_goes_with() -> None:
    assert shared_name(Path("mmproj-gemma-3-4b-it-f16.gguf")) == "gemma-3-4b-it"
    assert shared_name(Path("mmproj-google_gemma-3-4b-it-BF16.gguf")) == "google_gemma-3-4b-it"
    assert shared_name(Path("mmproj-F16.gguf")) == ""
    assert is_projector(Path("MMPROJ-x.gguf")) and not is_projector(Path("gemma-mmproj.gguf"))


def test_projectors_pair_by_shared_name_the_longest_first() -> None:
    models = [Path("gemma-3-4b-it-Q4_K_M.gguf"), Path("gemma-3-12b-it-Q4_K_M.gguf"), Path("qwen.gguf")]
    projectors = [Path("mmproj-gemma-3-4b-it-f16.gguf"), Path("mmproj-gemma-3-12b-it-f16.gguf"),
                  Path("mmproj-gemma-3-f16.gguf")]
    assert pair(models, projectors) == {models[0]: projectors[0], models[1]: projectors[1]}


def test_a_projector_naming_no_model_pairs_only_where_nothing_else_can() -> None:
    model, projector = Path("model-Q4_K_M.gguf"), Path("mmproj-F16.gguf")
    assert pair([model], [projector]) == {model: projector}
    assert pair([model, Path("other.gguf")], [projector]) == {}  # which one? neither
    named = Path("mmproj-other-f16.gguf")
    assert pair([model, Path("other.gguf")], [projector, named]) == {Path("other.gguf"): named}


def test_only_a_whole_clip_gguf_is_a_projector(tmp_path: Path) -> None:
    check_projector(write_projector(tmp_path / "mmproj-ok.gguf"))
    write_gguf(tmp_path / "model.gguf")
    (tmp_path / "short.gguf").write_bytes(write_projector(tmp_path / "p.gguf").read_bytes()[:4000])
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf")
    for name, said in [("model.gguf", "architecture is 'llama'"), ("short.gguf", "tensors need"),
                       ("junk.gguf", "not a GGUF file")]:
        with pytest.raises(ModelLoadError, match=said):
            check_projector(tmp_path / name)
