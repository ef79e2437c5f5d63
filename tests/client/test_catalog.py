"""The Models dialog's words (client.catalog) on CPython."""

from __future__ import annotations

from client.catalog import facts, hub_facts, progress_text, repo_of, size_text, template_words, time_left
from wire.types import Download, HubFile, ModelInfo


def test_sizes_read_as_the_hub_and_disks_count_them() -> None:
    assert [size_text(n) for n in (999, 1_500, 253_000_000, 4_700_000_000)] == ["999 B", "1.5 KB", "253.0 MB", "4.7 GB"]


def test_a_models_facts_say_size_quant_context_template_and_state() -> None:
    model = ModelInfo("m.gguf", True, engine="llama-cpp", n_ctx=4096, template="gguf", loaded=True, size=253_000_000,
                      quant="Q4_K_M", vision=True)
    assert facts(model) == (
        "253.0 MB · Q4_K_M · 4,096 tokens of context · template: The model's own chat template · takes images · loaded"
    )
    assert template_words("seed") == "template: Simple Human/Assistant chat"  # the server's own words for it
    assert template_words("/t/chatml.jinja") == "template: /t/chatml.jinja" and template_words("") == ""
    assert facts(ModelInfo("x.gguf", False, reason="it is cut short")) == "Cannot be used: it is cut short"
    big = HubFile("big-F16.gguf", ["big-F16.gguf"], 16_000_000_000, "F16")
    assert hub_facts(big) == "16.0 GB · F16 · more than this machine's free memory"


def test_a_downloads_progress_says_how_much_how_fast_and_how_long() -> None:
    running = Download("d1", "o/r", "m.gguf", ["m.gguf"], 4_000_000_000, 1_000_000_000, 10_000_000, "downloading")
    assert progress_text(running) == "1.0 GB of 4.0 GB · 10.0 MB/s · about 5 min left"
    assert time_left(Download("d2", "o/r", "m.gguf", [], 100, 50, 10.0, "downloading")) == "about 5 s left"
    failed = Download("d3", "o/r", "m.gguf", [], 100, 50, 0.0, "failed", error="m.gguf is corrupt")
    assert progress_text(failed) == "Failed: m.gguf is corrupt"


def test_a_repository_is_read_from_its_name_or_its_pages_address() -> None:
    assert repo_of(" bartowski/Qwen2.5-7B-Instruct-GGUF ") == "bartowski/Qwen2.5-7B-Instruct-GGUF"
    assert repo_of("https://hub.example/bartowski/Qwen2.5-7B-Instruct-GGUF/tree/main") == \
        "bartowski/Qwen2.5-7B-Instruct-GGUF"
    assert repo_of("not a repo") is None and repo_of("") is None
