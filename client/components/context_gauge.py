"""ContextGauge: a `<meter>` labelled "Context" with the tokens used out of the context size (client.gauge)."""

from __future__ import annotations

from typing import Any

from client.gauge import Gauge


class ContextGauge:
    """Binds the gauge's container, its meter and its text; hidden until an answer was counted."""

    def __init__(self, field: Any, meter: Any, text: Any) -> None:
        self._field, self._meter, self._text = field, meter, text

    def render(self, gauge: Gauge | None) -> None:
        self._field.hidden = gauge is None
        if gauge is None:
            return
        self._meter.max = gauge.size or max(gauge.used, 1)
        self._meter.value = gauge.used
        self._meter.setAttribute("aria-valuetext", gauge.text)
        self._meter.title = gauge.text  # the numbers beside it are hidden where the header is narrow
        self._text.textContent = gauge.text
