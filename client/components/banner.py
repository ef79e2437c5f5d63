"""Banner: the page's alert line (server unreachable), with a Retry button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.browser import listen


class Banner:
    """Binds the alert, its text and its Retry button; `render(None)` hides it."""

    def __init__(self, banner: Any, text: Any, retry: Any, on_retry: Callable[[], object]) -> None:
        self._banner, self._text = banner, text
        self._proxy = listen(retry, "click", lambda _event: on_retry())

    def render(self, message: str | None) -> None:
        self._banner.hidden = message is None
        if message is not None:
            self._text.textContent = message
