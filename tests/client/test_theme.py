"""The theme's choice (client.theme) on CPython: what is stored, and what it puts on <html>."""

from __future__ import annotations

from client.theme import DARK, KEY, LIGHT, SYSTEM, attribute, chosen
from tests.harness import ROOT


def test_a_stored_theme_is_read_back_and_anything_else_is_the_systems() -> None:
    assert [chosen(value) for value in ("light", "dark", "system")] == [LIGHT, DARK, SYSTEM]
    assert chosen(None) == SYSTEM and chosen("purple") == SYSTEM and chosen("") == SYSTEM


def test_light_and_dark_set_the_pages_attribute_and_system_leaves_it_off() -> None:
    assert (attribute(LIGHT), attribute(DARK), attribute(SYSTEM)) == ("light", "dark", None)


def test_the_script_before_first_paint_reads_the_same_key_and_values() -> None:
    script = (ROOT / "client" / "theme.js").read_text()
    assert f'localStorage.getItem("{KEY}")' in script
    assert '"light"' in script and '"dark"' in script
