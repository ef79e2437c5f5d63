"""What the components decide without a DOM: bubble looks and the send key."""

from __future__ import annotations

import sys

from client.components.chat_area import PLACEHOLDER, view_of
from client.components.type_area import sends_on_key
from client.state import Turn


def test_importing_the_client_does_not_touch_the_browser() -> None:
    import client.main  # noqa: F401  (runs start() only under emscripten)

    assert "js" not in sys.modules and "pyscript" not in sys.modules


def test_user_bubbles_are_blue_and_model_bubbles_grey() -> None:
    user = view_of(Turn(user=True, text="hi"))
    model = view_of(Turn(user=False, text="hello"))
    assert user.role == "user" and "justify-end" in user.row_class and "bg-blue-600" in user.bubble_class
    assert model.role == "model" and "justify-start" in model.row_class and "bg-gray-200" in model.bubble_class
    assert "whitespace-pre-wrap" in model.bubble_class  # line breaks survive


def test_placeholder_until_the_first_token() -> None:
    assert view_of(Turn(user=False, text="", status="pending")).text == PLACEHOLDER
    assert view_of(Turn(user=False, text="P", status="streaming")).text == "P"


def test_error_answers_look_different() -> None:
    error = view_of(Turn(user=False, text="boom", status="error"))
    assert "bg-red-50" in error.bubble_class and "bg-gray-200" not in error.bubble_class


def test_enter_sends_shift_enter_and_composition_do_not() -> None:
    assert sends_on_key("Enter", shift=False, composing=False)
    assert not sends_on_key("Enter", shift=True, composing=False)
    assert not sends_on_key("Enter", shift=False, composing=True)
    assert not sends_on_key("a", shift=False, composing=False)


def test_dev_reload_on_reload_event_or_new_server_boot() -> None:
    from client.devreload import should_reload

    assert not should_reload(None, "hello", "boot-1")  # first contact
    assert not should_reload("boot-1", "hello", "boot-1")  # reconnected to the same server
    assert should_reload("boot-1", "hello", "boot-2")  # the server restarted with new code
    assert should_reload("boot-1", "reload", "boot-1")
