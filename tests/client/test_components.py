"""What the components decide without a DOM: bubble looks and the send key."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence

from client import markdown
from client.components.chat_area import (
    COPY,
    EDIT,
    NEXT,
    PLACEHOLDER,
    PREVIOUS,
    REGENERATE,
    iso_time,
    jump_shown,
    view_of,
)
from client.components.settings_panel import template_line
from client.components.sidebar import is_find_key
from client.components.type_area import sends_on_key
from client.highlight import KEYWORD, STRING, highlight
from client.nodes import El
from client.state import Chat, Turn
from server.prompt import SEED
from wire.types import Health, TemplateInfo


def test_importing_the_client_does_not_touch_the_browser() -> None:
    import client.main  # noqa: F401  (runs start() only under emscripten; it imports the rest there)

    for module in pkgutil.walk_packages(client.__path__, "client."):
        importlib.import_module(module.name)
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


def test_thoughts_say_thinking_until_the_answer_text_comes() -> None:
    thinking = view_of(Turn(user=False, text="", thoughts="Hm", status="streaming"))
    assert (thinking.thoughts, thinking.thinking, thinking.text) == ("Hm", True, "")
    answering = view_of(Turn(user=False, text="Paris", thoughts="Hm", status="streaming"))
    assert answering.thoughts == "Hm" and not answering.thinking
    cut_short = view_of(Turn(user=False, text="", thoughts="Hm", status="stopped"))
    assert not cut_short.thinking  # over: "Thoughts", not "Thinking…"
    assert view_of(Turn(user=False, text="hi")).thoughts == ""


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


# Buttons under messages, and Markdown.


def test_actions_under_messages() -> None:
    assert view_of(Turn(user=True, text="q")).actions == (EDIT, COPY)
    assert view_of(Turn(user=True, text="q"), busy=True).actions == ()  # no edit while streaming
    assert view_of(Turn(user=False, text="a"), last=True).actions == (COPY, REGENERATE)
    assert view_of(Turn(user=False, text="a")).actions == (COPY,)
    assert view_of(Turn(user=False, text="a", status="streaming"), last=True).actions == ()


def test_a_turn_with_versions_has_a_switcher_disabled_at_its_ends_and_while_busy() -> None:
    off_back, off_next = ("prev-version-off", "‹", "Previous version"), ("next-version-off", "›", "Next version")
    answer = Turn(user=False, text="a")
    assert view_of(answer, last=True, versions=(2, 2)).actions == (
        PREVIOUS,
        ("version", "2/2", "2/2"),
        off_next,
        COPY,
        REGENERATE,
    )
    assert view_of(answer, versions=(2, 3)).actions[:3] == (PREVIOUS, ("version", "2/3", "2/3"), NEXT)
    assert view_of(Turn(user=True, text="q"), versions=(1, 2)).actions == (
        off_back,
        ("version", "1/2", "1/2"),
        NEXT,
        EDIT,
        COPY,
    )
    assert view_of(Turn(user=True, text="q"), busy=True, versions=(1, 2)).actions[2] == off_next
    assert all(name for _action, _label, name in view_of(answer, versions=(1, 2)).actions)


def test_markdown_only_for_model_answers_once_loaded() -> None:
    assert view_of(Turn(user=False, text="**a**"), rich=True).markdown
    assert not view_of(Turn(user=False, text="**a**"), rich=False).markdown
    assert not view_of(Turn(user=True, text="**a**"), rich=True).markdown
    assert not view_of(Turn(user=False, text="boom", status="error"), rich=True).markdown


def tags(nodes: Sequence[El | str]) -> list[str]:
    out = []
    for node in nodes:
        if isinstance(node, El):
            out += [node.tag, *tags(node.children)]
    return out


def test_markdown_renders_structure() -> None:
    nodes = markdown.render("# T\n\n1. a\n2. *b*\n\n| x | y |\n|:-:|--:|\n| 1 | 2 |\n\n> q\n\n`c` ~~s~~\n\n---\n")
    assert tags(nodes) == [
        "h1", "ol", "li", "li", "em", "table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td",
        "blockquote", "p", "p", "code", "s", "hr",
    ]  # fmt: skip
    assert "text-center" in child(nodes[2], 0, 0, 0).attrs["class"]  # table > thead > tr > th
    assert all("style" not in n.attrs for n in _walk_els(nodes))  # no inline styles (CSP)


def _walk_els(nodes: Sequence[El | str]) -> list[El]:
    out = []
    for node in nodes:
        if isinstance(node, El):
            out += [node, *_walk_els(node.children)]
    return out


def child(node: El | str, *path: int) -> El:
    """The element at `path` (child indexes) below `node`."""
    for i in path:
        assert isinstance(node, El), node
        node = node.children[i]
    assert isinstance(node, El), node
    return node


PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "[x](//evil.example/)",
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "```html\n<script>alert(1)</script>\n```",
    "<div style='position:fixed'>x</div>",
]


def test_markdown_never_passes_html_or_unsafe_links() -> None:
    for payload in PAYLOADS:
        nodes = markdown.render(payload)
        for el in _walk_els(nodes):
            assert el.tag in markdown.TAGS, payload
            assert set(el.attrs) <= {"class", "href", "rel", "target", "start", "type", "data-action"}, payload
            if el.tag == "a":
                assert el.attrs["href"].startswith(("http://", "https://")), payload
        text = markdown.text_of(nodes)
        if "<" in payload:
            assert "<" in text, payload  # the markup is still there, as text


def test_safe_href() -> None:
    for good in ("https://a.org/x?y#z", "http://a", "/path", "./rel", "../up", "page.html", "#frag", "mailto:a@b.c"):
        assert markdown.safe_href(good) == good
    for bad in ("javascript:x", " JavaScript:x", "java\tscript:x", "data:x", "vbscript:x", "//host/x", "file:///e"):
        assert markdown.safe_href(bad) is None, bad


def test_code_blocks_are_highlighted_and_lossless() -> None:
    code = 'def f(x):\n    return "a#b" + 1  # note\n'
    pieces = highlight(code, "py")
    assert "".join(text for _, text in pieces) == code
    assert (KEYWORD, "def") in pieces and (STRING, '"a#b"') in pieces
    assert highlight("let s = 'x /* y", "js")[-1] == (STRING, "'x /* y")  # half-written code is fine
    assert highlight("<b>plain</b>", "unknown") == [("", "<b>plain</b>")]
    block = markdown.render("```rust\nfn main() {}\n```")[0]
    assert tags([block]).count("button") == 1 and markdown.text_of([block]).startswith("rustCopy code")


def test_settings_show_the_servers_prompt_template_when_it_says() -> None:
    gguf = Health(status="ok", template=TemplateInfo(name="gemma3 chat template", source="gguf"))
    seed = Health(status="ok", template=TemplateInfo(name="seed", source="seed"))
    assert template_line(gguf) == "Prompt template: gemma3 chat template (gguf)"
    assert template_line(seed) == "Prompt template: seed (seed)"
    plain = Health(status="ok", template=TemplateInfo(name=SEED.name, source=SEED.source))
    assert template_line(plain) == "Prompt template: Simple Human/Assistant chat (built-in)"  # no "### Human" jargon
    assert template_line(Health(status="ok")) is None  # an older server: no line
    assert template_line(None) is None  # not heard from the server


def test_an_answer_names_its_model_beside_its_stats() -> None:
    done = view_of(Turn(user=False, text="Paris", note="3 tokens · 40.0 tok/s", model="tiny.gguf"))
    assert done.note == "tiny.gguf · 3 tokens · 40.0 tok/s"
    assert view_of(Turn(user=False, text="Paris", note="3 tokens")).note == "3 tokens"  # an older answer
    loading = view_of(Turn(user=False, text="", status="pending", note="Loading tiny.gguf… 50%"))
    assert loading.text == PLACEHOLDER and loading.note == "Loading tiny.gguf… 50%"


def test_model_picker_options() -> None:
    from client.components.model_picker import Option, options
    from wire.types import ModelInfo, ModelList

    # No /api/models (an older server): the one model /health names, as the default; or no picker.
    assert options(None, Health(status="ok", model="gemma.gguf"), "") == (
        (Option("", "gemma.gguf", title="The server's model"),),
        "",
    )
    assert options(None, Health(status="ok", model="gemma.gguf"), "tiny.gguf")[1] == ""
    assert options(None, Health(status="ok"), "") == ((), "")
    assert options(None, None, "") == ((), "")

    models = ModelList(
        default="big.gguf",
        models=[
            ModelInfo(name="big.gguf", usable=True, engine="llama-cpp", n_ctx=4096, template="gguf", loaded=True),
            ModelInfo(name="tiny.gguf", usable=True),
            ModelInfo(name="notes.txt", usable=False, reason="not a model file"),
        ],
    )
    offered, selected = options(models, None, "")
    assert selected == "big.gguf"  # a chat that names none is on the default
    assert [(o.value, o.disabled) for o in offered] == [("big.gguf", False), ("tiny.gguf", False), ("notes.txt", True)]
    assert offered[0].title == "llama-cpp, context 4096, template: gguf, loaded"
    assert "not a model file" in offered[2].text and offered[2].title == "not a model file"
    assert options(models, None, "tiny.gguf")[1] == "tiny.gguf"
    # A chat on a model the server no longer offers shows it, not selectable, rather than another one.
    offered, selected = options(models, None, "gone.gguf")
    assert selected == "gone.gguf" and offered[0].value == "gone.gguf" and offered[0].disabled


def test_ctrl_or_cmd_k_is_the_find_key() -> None:
    assert is_find_key("k", ctrl=True, meta=False) and is_find_key("K", ctrl=False, meta=True)
    assert not is_find_key("k", ctrl=False, meta=False) and not is_find_key("j", ctrl=True, meta=False)


def test_a_message_shows_its_files_by_name_never_their_text() -> None:
    from client.attachments import Attachment
    from client.components.attachments import remove_label

    files = (Attachment("greet.py", "print('secret')"), Attachment("n.md", "# N"))
    view = view_of(Turn(user=True, text="Explain.", files=files))
    assert view.files == ("greet.py", "n.md") and view.text == "Explain."
    assert "secret" not in repr(view)
    assert view_of(Turn(user=True, text="plain")).files == ()
    assert remove_label("greet.py") == "Remove greet.py"


def test_chat_settings_system_choices_and_preset_options() -> None:
    from client.components.chat_settings import (
        DEFAULT,
        NONE,
        OWN,
        choice_of,
        global_hint,
        groups,
        preset_hint,
        summary,
        system_of,
    )
    from wire.types import SamplingParams

    own = "Line one\n  line two\n"
    assert [choice_of(s) for s in (None, "", "  \n", own)] == [DEFAULT, NONE, NONE, OWN]
    assert [system_of(c, own) for c in (DEFAULT, NONE, OWN)] == [None, "", own]  # kept as written
    for system in (None, "", own):  # the dialog shows what it saves
        assert system_of(choice_of(system), system or "") == system
    assert global_hint(SamplingParams()) == "Settings has none: the server's default applies."
    assert global_hint(SamplingParams(system="Be\nbrief.")) == "From Settings: “Be brief.”"
    assert global_hint(SamplingParams(system="w " * 200)).endswith("…”")
    assert groups({}) == (("Built-in", ("Precise", "Balanced", "Creative")),)
    assert groups({"Cold": SamplingParams(top_k=7)})[1] == ("Yours", ("Cold",))
    assert preset_hint("", {}) == "The values in Settings."
    assert preset_hint("Cold", {"Cold": SamplingParams(top_k=7)}) == "Over the values in Settings: Top-k 7."
    assert summary(Chat()) == ""
    assert summary(Chat(system=own, preset="Cold")) == "This chat has its own system prompt and the Cold preset."
    assert summary(Chat(system="")) == "This chat has no system prompt."


def test_jump_to_bottom_shows_only_away_from_the_bottom_while_an_answer_streams_or_newer_text_waits() -> None:
    assert jump_shown(near_bottom=False, busy=True, unseen=False)
    assert jump_shown(near_bottom=False, busy=False, unseen=True)
    assert not jump_shown(near_bottom=False, busy=False, unseen=False)  # reading old messages, nothing new
    assert not jump_shown(near_bottom=True, busy=True, unseen=True)  # following already


def test_a_message_carries_when_it_was_written_and_an_old_one_no_time() -> None:
    assert view_of(Turn(user=True, text="q", written=1_700_000_000.0)).written == 1_700_000_000.0
    assert view_of(Turn(user=False, text="a", written=1.5)).written == 1.5
    assert view_of(Turn(user=True, text="q")).written == 0.0
    assert iso_time(1_700_000_000.0) == "2023-11-14T22:13:20+00:00"
