"""Tool calls in the page (client.tools, and the app's rounds of calls) on CPython, with a fake server."""

from __future__ import annotations

import asyncio

from msgspec.structs import replace

from client import library as lib
from client import tools
from client.app import App
from client.attachments import Attachment
from client.components import tool_calls, tools_panel
from client.markdown import text_of
from client.nodes import El
from client.state import DENIED, STOPPED_CALL, Call, Chat, Round, Turn, restore
from tests.client.test_app import settle
from tests.fakes import DONE, FakeServer, FakeStore
from tests.harness import run_async
from wire.events import Event, TokenEvent, ToolCallEvent
from wire.types import BUILTIN, PYTHON_TOOL, ToolCallResult, ToolInfo, ToolList

SHOUT = ToolInfo("local", "shout", "Shouts.", {"type": "object", "properties": {"text": {"type": "string"}}})
LISTING = ToolList([PYTHON_TOOL, SHOUT])


def calling(call_id: str = "c1", name: str = "shout", arguments: str = '{"text": "hi"}') -> list[Event]:
    """An answer that says a word, then calls a tool."""
    return [TokenEvent("Let me see."), ToolCallEvent(call_id, name, arguments), DONE]


async def chat_with_tools(server: FakeServer, *keys: str) -> App:
    app = App(server, FakeStore())
    await app.refresh_tools()
    app.choose_tools(keys)
    app.send("Shout hi")
    await settle(app)
    return app


def test_a_call_waits_for_the_users_word_then_the_answer_goes_on_from_its_result() -> None:
    async def run() -> None:
        server = FakeServer(calling(), [TokenEvent("HI it is."), DONE], tools=LISTING)
        app = await chat_with_tools(server, tools.key(SHOUT))
        first = server.calls[0][1]
        assert [t.name for t in first.tools] == ["shout"] and first.tools[0].parameters == SHOUT.input_schema
        answer = app.current.turns[-1]
        assert answer.status == "calling" and answer.text == "Let me see." and answer.calls[0].state == "asking"
        assert app.current.busy and not server.tool_calls  # nothing runs before the user says so

        app.answer_call(app.current.id, "c1", "allow")
        await settle(app)
        assert [(r.server, r.name, r.arguments) for r in server.tool_calls] == [("local", "shout", {"text": "hi"})]
        again = server.calls[1][1].conversation.messages
        assert [m.user for m in again] == [True, False] and again[-1].text == "Let me see."
        assert again[-1].calls[0].result == 'shout ran with {"text": "hi"}' and not again[-1].calls[0].is_error
        answer = app.current.turns[-1]
        assert answer.status == "done" and answer.text == "HI it is." and len(answer.rounds) == 1
        assert answer.rounds[0].calls[0].state == "done"

    run_async(run())


def test_a_denied_call_tells_the_model_so() -> None:
    async def run() -> None:
        server = FakeServer(calling(), [TokenEvent("Fine."), DONE], tools=LISTING)
        app = await chat_with_tools(server, tools.key(SHOUT))
        app.answer_call(app.current.id, "c1", "deny")
        await settle(app)
        assert not server.tool_calls
        [use] = server.calls[1][1].conversation.messages[-1].calls
        assert (use.result, use.is_error) == (DENIED, True)

    run_async(run())


def test_allow_for_this_chat_runs_that_tools_later_calls_without_asking() -> None:
    async def run() -> None:
        server = FakeServer(calling("c1"), calling("c2"), [TokenEvent("Done."), DONE], tools=LISTING)
        app = await chat_with_tools(server, tools.key(SHOUT))
        app.answer_call(app.current.id, "c1", "always")
        await settle(app)
        assert app.current.allowed == (tools.key(SHOUT),)
        assert len(server.tool_calls) == 2 and app.current.turns[-1].status == "done"
        assert len(app.current.turns[-1].rounds) == 2

    run_async(run())


def test_stop_cancels_a_running_call_and_ends_the_answer() -> None:
    async def run() -> None:
        server = FakeServer(calling(), tools=LISTING)
        server.hang_tools = True
        app = await chat_with_tools(server, tools.key(SHOUT))
        app.answer_call(app.current.id, "c1", "allow")
        await asyncio.sleep(0)  # the call is on its way
        assert server.tool_calls and app.current.turns[-1].calls[0].state == "running"
        app.stop_answer()
        await asyncio.gather(*app.tasks, return_exceptions=True)  # the call's task ends cancelled
        answer = app.current.turns[-1]
        assert answer.status == "stopped" and not app.current.busy and len(server.calls) == 1
        assert (answer.calls[0].result, answer.calls[0].is_error) == (STOPPED_CALL, True)

    run_async(run())


def test_the_python_tool_runs_in_the_page_and_bad_calls_are_error_results() -> None:
    async def run() -> None:
        ran: list[str] = []

        async def python(code: str, files: tuple[Attachment, ...]) -> ToolCallResult:
            ran.append(code)
            return ToolCallResult(f"4\n{[f.name for f in files]}", False)

        server = FakeServer(calling("c1", "python", '{"code": "print(2 + 2)"}'), [DONE], tools=LISTING)
        app = await chat_with_tools(server, tools.key(PYTHON_TOOL))
        app.run_python = python
        app.answer_call(app.current.id, "c1", "allow")
        await settle(app)
        assert ran == ["print(2 + 2)"] and not server.tool_calls
        assert server.calls[1][1].conversation.messages[-1].calls[0].result == "4\n[]"
        not_json = await tools.run(server, python, PYTHON_TOOL, "python", "{oops")
        assert not_json.is_error and "not JSON" in not_json.text
        no_code = await tools.run(server, python, PYTHON_TOOL, "python", '{"src": "1"}')
        assert no_code.is_error and '"code"' in no_code.text
        off = await tools.run(server, python, None, "rm", "{}")
        assert off == ToolCallResult(tools.NOT_ON.format(name="rm"), True)

    run_async(run())


def test_a_reload_during_a_round_asks_again_for_a_call_that_was_running() -> None:
    async def run() -> None:
        server = FakeServer(calling(), tools=LISTING)
        server.hang_tools = True
        app = await chat_with_tools(server, tools.key(SHOUT))
        app.answer_call(app.current.id, "c1", "allow")
        await asyncio.sleep(0)
        saved = dict(app.records())
        for task in app.tasks:
            task.cancel()
        await asyncio.gather(*app.tasks, return_exceptions=True)
        reloaded = lib.from_records(saved)
        answer = reloaded.current.turns[-1]
        assert answer.status == "calling" and answer.calls[0].state == "asking"

    run_async(run())


def test_tools_sharing_a_name_are_told_apart_by_their_server() -> None:
    other = ToolInfo("remote", "shout", "Shouts louder.", {})
    listing = ToolList([PYTHON_TOOL, SHOUT, other])
    both = tools.offered(listing, (tools.key(SHOUT), tools.key(other)))
    assert list(both) == ["local_shout", "remote_shout"]
    assert list(tools.offered(listing, (tools.key(other), "gone/tool"))) == ["shout"]
    assert [s for s, _ in tools.by_server(listing)] == [BUILTIN, "local", "remote"]
    assert tools.offered(ToolList([ToolInfo("s", "a b/c", "", {})]), ("s/a b/c",)).keys() == {"a_b_c"}


def test_restore_keeps_a_round_waiting_and_stops_it_when_not_resuming() -> None:
    waiting = Chat(turns=(Turn(True, "Hi"), Turn(False, "", status="calling")), id="c")
    assert restore(waiting, resume=True) == waiting
    assert restore(waiting, resume=False).turns[-1].status == "stopped"


ROUNDED = Chat(
    turns=(
        Turn(True, "Shout hi"),
        Turn(False, "HI it is.", rounds=(Round("Let me see.", (Call("c1", "shout", '{"text": "hi"}', "done", "HI"),)),)
             ),
    ),
    id="c9",
    tools=("local/shout",),
    allowed=("local/shout",),
)


def test_calls_are_exported_and_imported_with_the_chat() -> None:
    text = lib.export_markdown(ROUNDED)
    assert "Let me see.\n\n> *Tool call:* `shout` `{\"text\": \"hi\"}`\n>\n> *Result:*\n>\n> HI\n\nHI it is." in text
    again = lib.import_many(lib.export_json(ROUNDED), lambda: "new", 0.0).chats[0]
    # the tools it offers come along; which run unasked do not: a file from elsewhere must not run tools
    assert again.turns == ROUNDED.turns and (again.tools, again.allowed) == (ROUNDED.tools, ())


def test_the_blocks_of_calls_say_what_ran_and_offer_the_choices_while_one_waits() -> None:
    [said, folded] = tool_calls.round_nodes(ROUNDED.turns[-1].rounds, rich=False)
    assert isinstance(said, El) and said.children == ["Let me see."]
    assert isinstance(folded, El) and folded.tag == "details" and text_of([folded]).startswith("Called shout")
    asking = Call("c2", "shout", "not json")
    [box] = tool_calls.call_nodes((asking,))
    assert isinstance(box, El) and box.attrs["aria-label"] == "Tool call: shout"
    buttons = [n for n in _all(box) if n.tag == "button"]
    assert [(b.children[0], b.attrs["data-call"]) for b in buttons] == [
        ("Allow", "c2"), ("Allow for this chat", "c2"), ("Deny", "c2")
    ]
    assert "not json" in text_of([box])  # arguments that are not JSON show as written
    [running] = tool_calls.call_nodes((replace(asking, state="running"),))
    assert isinstance(running, El) and not [n for n in _all(running) if n.tag == "button"]
    failed = replace(asking, state="done", result="boom", is_error=True)
    assert text_of(tool_calls.call_nodes((failed,))).startswith("Called shout · error")


def _all(node: El) -> list[El]:
    return [node, *(n for child in node.children if isinstance(child, El) for n in _all(child))]


def test_the_tools_dialog_groups_by_server_and_counts_what_is_on() -> None:
    groups = tools_panel.rows(LISTING, ("local/shout",))
    assert [(server, [(r.name, r.on) for r in rows]) for server, rows in groups] == [
        (BUILTIN, [("python", False)]), ("local", [("shout", True)])
    ]
    assert tools_panel.label_for(ROUNDED, LISTING) == "Tools (1)"
    assert tools_panel.label_for(ROUNDED, ToolList([PYTHON_TOOL])) == "Tools"  # its server went away
