"""Just enough of a DOM for the client's rendering code to run on CPython, in tests and the bench."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class Node:
    """Just enough of a DOM node for ChatArea's Markdown updates."""

    def __init__(self, tag: str = "#text", text: str = "") -> None:
        self.tag, self.text = tag, text
        self.attrs: dict[str, str] = {}
        self.children: list[Node] = []
        self.parent: Node | None = None
        self.built = 0  # nodes created under this document
        self.namespace: str | None = None  # set by createElementNS (MathML)

    @property
    def childNodes(self) -> Any:  # noqa: N802 (the DOM's naming)
        return SimpleNamespace(length=len(self.children))

    @property
    def lastChild(self) -> Node:  # noqa: N802
        return self.children[-1]

    def append(self, *nodes: Node) -> None:
        for node in nodes:
            node.parent = self
            self.children.append(node)

    def remove(self) -> None:
        assert self.parent is not None
        siblings = self.parent.children
        if siblings[-1] is self:  # ChatArea removes from the end: keep that O(1) for the bench
            siblings.pop()
        else:
            siblings.remove(self)

    def replaceChildren(self) -> None:  # noqa: N802
        self.children = []

    def setAttribute(self, name: str, value: str) -> None:  # noqa: N802
        self.attrs[name] = value

    def createElement(self, tag: str) -> Node:  # noqa: N802
        self.built += 1
        return Node(tag)

    def createElementNS(self, namespace: str, tag: str) -> Node:  # noqa: N802
        node = self.createElement(tag)
        node.namespace = namespace
        return node

    def createTextNode(self, text: str) -> Node:  # noqa: N802
        self.built += 1
        return Node(text=text)

    def dump(self) -> Any:
        if self.tag == "#text":
            return self.text
        tag = f"{self.namespace} {self.tag}" if self.namespace else self.tag
        return (tag, self.attrs, [c.dump() for c in self.children])
