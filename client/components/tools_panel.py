"""ToolsPanel: which tools the open chat offers the model, in a native modal <dialog>.

The tools are grouped by server (the built-in ones first, then each MCP server's): a checkbox per
tool, and one per server that turns all of its tools on or off (mixed while only some are on).
Save hands the keys of the tools on to `on_save`; the chat keeps them. The button that opens the
dialog says how many are on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client import tools
from client.browser import listen
from client.state import Chat
from wire.types import BUILTIN, ToolList

FIELDSET = "flex flex-col gap-1.5 rounded-lg border border-gray-200 p-3 dark:border-gray-700"
LEGEND = "flex items-center gap-2 px-1 text-sm font-medium"
ROW = "flex items-start gap-2 text-sm"
HINT = "text-xs text-gray-600 dark:text-gray-400"
NONE_LISTED = "This server offers no tools. Add MCP servers with MCP_CONFIG (see the README)."


@dataclass(frozen=True)
class ToolRow:
    key: str
    name: str
    description: str
    on: bool


def server_label(server: str) -> str:
    return "Built in (runs in this page)" if server == BUILTIN else f"MCP server: {server}"


def rows(listing: ToolList | None, on: tuple[str, ...]) -> list[tuple[str, list[ToolRow]]]:
    """The dialog's groups: (server, its tools as rows)."""
    return [
        (server, [ToolRow(tools.key(t), t.name, t.description, tools.key(t) in on) for t in group])
        for server, group in tools.by_server(listing)
    ]


def label_for(chat: Chat, listing: ToolList | None) -> str:
    """The opener's text: how many of the chat's tools are on and still offered."""
    count = len(tools.offered(listing, chat.tools))
    return f"Tools ({count})" if count else "Tools"


class ToolsPanel:
    def __init__(self, dialog: Any, form: Any, opener: Any, on_save: Callable[[tuple[str, ...]], None]) -> None:
        from js import document

        get = document.getElementById
        self._dialog, self._opener, self._on_save = dialog, opener, on_save
        self._list, self._empty = get("tools-list"), get("tools-empty")
        self._boxes: dict[str, list[Any]] = {}  # server -> its tools' checkboxes
        self._servers: dict[str, Any] = {}  # server -> its own checkbox
        self._proxies = [
            listen(form, "submit", self._submit),
            listen(form, "change", self._changed),
            listen(get("tools-cancel"), "click", lambda _e: dialog.close()),
        ]

    def mark(self, chat: Chat, listing: ToolList | None) -> None:
        label = label_for(chat, listing)
        self._opener.querySelector("[data-part=label]").textContent = label  # beside its icon
        self._opener.setAttribute("aria-label", label)

    def open(self, chat: Chat, listing: ToolList | None) -> None:
        from js import document

        self._list.replaceChildren()
        self._boxes, self._servers = {}, {}
        groups = rows(listing, chat.tools)
        for n, (server, group) in enumerate(groups):
            self._list.append(self._fieldset(document, n, server, group))
        self._empty.hidden = bool(groups)
        self._empty.textContent = NONE_LISTED
        self._dialog.showModal()

    def _fieldset(self, document: Any, n: int, server: str, group: list[ToolRow]) -> Any:
        fieldset = document.createElement("fieldset")
        fieldset.className = FIELDSET
        legend = document.createElement("legend")
        legend.className = LEGEND
        every = self._checkbox(document, f"tools-server-{n}")
        every.dataset.server = server
        legend.append(every, self._label(document, every.id, server_label(server)))
        fieldset.append(legend)
        self._servers[server], self._boxes[server] = every, []
        for i, row in enumerate(group):
            box = self._checkbox(document, f"tools-{n}-{i}")
            box.value, box.checked, box.dataset.group = row.key, row.on, server
            hint = document.createElement("p")
            hint.className, hint.id, hint.textContent = HINT, f"{box.id}-hint", row.description
            box.setAttribute("aria-describedby", hint.id)
            text = document.createElement("div")
            text.append(self._label(document, box.id, row.name), hint)
            line = document.createElement("div")
            line.className = ROW
            line.append(box, text)
            fieldset.append(line)
            self._boxes[server].append(box)
        self._sync(server)
        return fieldset

    @staticmethod
    def _checkbox(document: Any, id: str) -> Any:
        box = document.createElement("input")
        box.type, box.id, box.className = "checkbox", id, "mt-1"
        return box

    @staticmethod
    def _label(document: Any, for_id: str, text: str) -> Any:
        label = document.createElement("label")
        label.htmlFor, label.textContent = for_id, text
        return label

    def _sync(self, server: str) -> None:
        """The server's checkbox: on when all its tools are, mixed when some are."""
        on = [bool(box.checked) for box in self._boxes[server]]
        every = self._servers[server]
        every.checked = bool(on) and all(on)
        every.indeterminate = any(on) and not all(on)

    def _changed(self, event: Any) -> None:
        target = event.target
        server, group = target.getAttribute("data-server"), target.getAttribute("data-group")  # JS null if absent
        if server:  # a server's own checkbox: all its tools follow it
            for box in self._boxes.get(str(server), []):
                box.checked = target.checked
        elif group:
            self._sync(str(group))

    def _submit(self, event: Any) -> None:
        event.preventDefault()
        on = tuple(str(box.value) for boxes in self._boxes.values() for box in boxes if box.checked)
        self._on_save(on)
        self._dialog.close()
