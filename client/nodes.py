"""El: the tree of whitelisted elements and plain text that renderers produce (client.markdown,
client.mathml) and client.components.chat_area.build turns into DOM nodes, never HTML."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class El:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[El | str] = field(default_factory=list)
