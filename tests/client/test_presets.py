"""Sampling presets and what a chat sends (client.presets), on CPython."""

from __future__ import annotations

from client import presets
from client.presets import BUILT_IN, NAME_MAX, describe, every, name_error, params_for
from client.settings import FIELDS
from client.state import Chat, configure
from wire.types import SamplingParams

GLOBAL = SamplingParams(max_tokens=64, temperature=0.7, seed=3, system="Be global.")
COLD = SamplingParams(temperature=0.25, top_k=7)


def test_built_in_presets_are_valid_sampling_values_without_a_system_prompt() -> None:
    assert list(BUILT_IN) == ["Precise", "Balanced", "Creative"]
    temperatures = [p.temperature for p in BUILT_IN.values() if p.temperature is not None]
    assert len(temperatures) == len(BUILT_IN) and temperatures == sorted(temperatures)  # from careful to loose
    for preset in BUILT_IN.values():
        assert preset.system is None
        for f in FIELDS:  # inside the bounds msgspec enforces on the server
            value = getattr(preset, f.name)
            assert value is None or f.low <= value <= f.high


def test_a_chat_on_defaults_sends_the_global_settings() -> None:
    assert params_for(Chat(), GLOBAL, {}) is GLOBAL


def test_a_preset_overrides_only_the_fields_it_sets_and_keeps_the_global_system_prompt() -> None:
    chat = configure(Chat(), None, "Cold")
    sent = params_for(chat, GLOBAL, {"Cold": COLD})
    assert sent == SamplingParams(max_tokens=64, temperature=0.25, top_k=7, seed=3, system="Be global.")
    creative = params_for(configure(Chat(), None, "Creative"), GLOBAL, {})
    assert creative.temperature == BUILT_IN["Creative"].temperature and creative.max_tokens == 64


def test_a_chats_own_system_prompt_is_sent_as_written_and_none_means_none() -> None:
    own = "Line one.\n\n  Indented line two.\n"
    assert params_for(configure(Chat(), own, ""), GLOBAL, {}).system == own
    # "": none at all, as the server reads it (None would be the server's default prompt)
    assert params_for(configure(Chat(), "", ""), GLOBAL, {}).system == ""
    assert params_for(configure(Chat(), " \n\t", ""), GLOBAL, {}).system == ""  # all whitespace: none
    assert params_for(configure(Chat(), own, ""), SamplingParams(), {}) == SamplingParams(system=own)


def test_a_preset_that_no_longer_exists_is_ignored() -> None:
    chat = configure(Chat(), None, "Gone")
    assert params_for(chat, GLOBAL, {}) == GLOBAL


def test_user_presets_save_replace_delete_and_drop_the_system_prompt() -> None:
    mine = presets.saved({}, "  My   cold ", SamplingParams(temperature=0.2, system="not kept"))
    assert mine == {"My cold": SamplingParams(temperature=0.2)}
    mine = presets.saved(mine, "My cold", COLD)
    assert mine == {"My cold": COLD}
    assert presets.deleted(mine, "My cold") == {} and presets.deleted(mine, "other") == mine


def test_preset_names() -> None:
    assert name_error("Cold") == ""
    assert name_error("   ") == "Give the preset a name"
    assert "built-in" in name_error("balanced")  # not even in another case: the chat dialog would show two
    assert presets.clean_name("x" * 100) == "x" * NAME_MAX


def test_every_lists_built_ins_first_then_the_users_by_name() -> None:
    assert list(every({"zeta": COLD, "Alpha": COLD})) == ["Precise", "Balanced", "Creative", "Alpha", "zeta"]


def test_describe_names_the_values_a_preset_sets() -> None:
    assert describe(COLD) == "Temperature 0.25 · Top-k 7"
    assert describe(SamplingParams()) == "sets nothing: the default settings apply"


def test_stored_presets_round_trip_and_garbage_reads_as_none() -> None:
    mine = {"Cold": COLD, "Long": SamplingParams(max_tokens=2000)}
    assert presets.load(presets.dump(mine)) == mine
    assert presets.load(None) == {}
    assert presets.load("not json") == {}
    assert presets.load('{"Hot": {"temperature": 9}}') == {}  # out of bounds
    assert presets.load('{"Precise": {"temperature": 1.0}, "ok": {}}') == {"ok": SamplingParams()}  # built-in name


def test_balanced_is_the_servers_default_sampling() -> None:
    """Balanced names llama.cpp's defaults, which the server also applies to a silent request."""
    from server.sampling import REPEAT_PENALTY, TEMPERATURE, TOP_K, TOP_P

    balanced = BUILT_IN["Balanced"]
    assert (balanced.temperature, balanced.top_p, balanced.top_k, balanced.repeat_penalty) == (
        TEMPERATURE, TOP_P, TOP_K, REPEAT_PENALTY
    )
