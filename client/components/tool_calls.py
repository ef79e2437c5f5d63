"""An answer's tool calls, shown in its column: the rounds before its text, each call folded in a
`<details>` block with its arguments and result; then the calls that wait on the user, each with
"Allow", "Allow for this chat" and "Deny" (chat_area's one click listener handles them by
`data-action`, the call by `data-call`).

The blocks are `El` trees (client.nodes) built without a DOM, so tests read them on CPython.
"""

from __future__ import annotations

import json
from typing import Any

from client import markdown
from client.nodes import El
from client.state import Call, Round

# Full class strings so Tailwind's scanner finds them here.
ROUND_TEXT = (
    "mb-1 max-w-full break-words rounded-2xl rounded-bl-md bg-gray-200 px-4 py-2 leading-relaxed text-gray-900 "
    "shadow-sm dark:bg-gray-800 dark:text-gray-100"
)
DONE_CALL = "mb-1 max-w-full text-sm text-gray-700 dark:text-gray-300"
SUMMARY = (
    "cursor-pointer select-none rounded px-2 py-1 text-xs hover:bg-gray-200 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:hover:bg-gray-800"
)
DETAIL = "mt-1 flex flex-col gap-1 border-l-2 border-gray-300 pl-3 dark:border-gray-600"
LABEL = "text-xs font-semibold text-gray-600 dark:text-gray-400"
CALL_PRE = (
    "max-h-64 overflow-auto whitespace-pre-wrap break-words rounded bg-gray-50 p-2 font-mono text-xs "
    "text-gray-900 dark:bg-gray-900 dark:text-gray-100"
)
WAITING = (
    "my-1 flex max-w-full flex-col gap-2 rounded-xl border border-amber-400 bg-amber-50 p-3 text-sm text-gray-900 "
    "dark:border-amber-600 dark:bg-gray-900 dark:text-gray-100"
)
BUTTONS = "flex flex-wrap gap-2"
ALLOW = (
    "rounded-lg bg-blue-600 px-3 py-1 text-sm font-medium text-white hover:bg-blue-700 focus-visible:outline-2 "
    "focus-visible:outline-offset-2 focus-visible:outline-blue-600"
)
OTHER = (
    "rounded-lg border border-gray-300 px-3 py-1 text-sm hover:bg-gray-100 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:border-gray-700 dark:hover:bg-gray-800"
)
# (data-action, label): what the user may say to a call that waits
CHOICES = (("allow-call", "Allow"), ("always-call", "Allow for this chat"), ("deny-call", "Deny"))


def pretty(arguments: str) -> str:
    """A call's arguments, indented where they are JSON (as the model wrote them where not)."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def summary_of(call: Call) -> str:
    if call.state == "done":
        return f"Called {call.name}" + (" · error" if call.is_error else "")
    return f"Running {call.name}…" if call.state == "running" else f"Wants to call {call.name}"


def _part(label: str, text: str) -> list[El | str]:
    return [El("span", {"class": LABEL}, [label]), El("pre", {"class": CALL_PRE}, [text])]


def done_call(call: Call) -> El:
    """A call with its result, folded."""
    body = _part("Arguments", pretty(call.arguments)) + _part("Error" if call.is_error else "Result", call.result)
    return El("details", {"class": DONE_CALL, "data-part": "call", "data-state": "done"}, [
        El("summary", {"class": SUMMARY}, [summary_of(call)]), El("div", {"class": DETAIL}, body),
    ])


def waiting_call(call: Call) -> El:
    """A call that waits: for the user's word (with the choices), or for its result."""
    children: list[El | str] = [El("strong", {}, [summary_of(call)]), *_part("Arguments", pretty(call.arguments))]
    if call.state == "asking":
        buttons: list[El | str] = [
            El("button", {"type": "button", "class": ALLOW if action == "allow-call" else OTHER,
                          "data-action": action, "data-call": call.id}, [label])
            for action, label in CHOICES
        ]
        children.append(El("div", {"class": BUTTONS}, buttons))
    attrs = {"class": WAITING, "role": "group", "aria-label": f"Tool call: {call.name}", "data-part": "call",
             "data-state": call.state}
    return El("div", attrs, children)


def round_nodes(rounds: tuple[Round, ...], rich: bool) -> list[El | str]:
    """The rounds before an answer's text: what the model said, then its calls, folded."""
    nodes: list[El | str] = []
    for r in rounds:
        if r.text:
            said: list[El | str] = markdown.render(r.text) if rich else [r.text]
            look = ROUND_TEXT if rich else f"{ROUND_TEXT} whitespace-pre-wrap"
            nodes.append(El("div", {"class": look, "data-part": "round-text"}, said))
        nodes += [done_call(c) for c in r.calls]
    return nodes


def call_nodes(calls: tuple[Call, ...]) -> list[El | str]:
    """The calls after an answer's text: folded once done, open while they wait."""
    return [done_call(c) if c.state == "done" else waiting_call(c) for c in calls]


def show(document: Any, column: Any, bubble: Any, nodes: list[El | str], part: str, before: bool) -> None:
    """Put `nodes` in the column's `part` container, made on first need just before the bubble
    (`before`) or just after it."""
    from client.components.chat_area import build

    box = column.querySelector(f":scope > [data-part={part}]")
    if not box:  # JS null when there is none yet
        if not nodes:
            return
        box = document.createElement("div")
        box.className = "flex max-w-full flex-col items-start"
        box.dataset.part = part
        bubble.before(box) if before else bubble.after(box)
    box.replaceChildren()
    build(document, box, nodes)
    box.hidden = not nodes
