"""Split a model's thoughts (`<think>…</think>`) from its answer, however the tokenizer cuts the text.

Thinking models write their reasoning between `<think>` and `</think>`; templates such as
DeepSeek-R1's and QwQ's open the block in the prompt itself, so such an answer starts inside it
(`Splitter(thinking=True)`). Engines that report reasoning apart (llama.cpp's and vLLM's
`reasoning_content`) hand it over as thoughts (`feed_thought`), and their answer text ends
them, so thoughts and answer are trimmed alike for every engine.

The answer never contains either tag: `<think>` opens thoughts, a stray `</think>` is dropped.
Text that might be the start of a tag is held back until it is completed or proven harmless, and
so is whitespace at the end of either kind of text: thoughts and answer neither start nor end in
blank space (the blank line after `</think>` does not start the answer).
"""

from __future__ import annotations

from server.stops import held_from

OPEN = "<think>"
CLOSE = "</think>"

Part = tuple[bool, str]  # (is thought, text)


def opens_thinking(rendered: str) -> bool:
    """Whether a rendered prompt leaves the model inside a think block (its template opened one)."""
    return rendered.rstrip().endswith(OPEN)


class Splitter:
    def __init__(self, thinking: bool = False) -> None:
        self.thinking = thinking
        self._held = ""
        self._fresh = True  # at the start of thoughts or answer: leading whitespace is dropped
        self._blank = True  # nothing of the current thoughts or answer has gone out yet
        self._apart = False  # the thoughts now going on were reported apart from the text

    def feed(self, text: str) -> list[Part]:
        """Take the next piece of model output; return the thought and answer text now safe to show."""
        out = self._switch(False) if self._apart else []
        self._apart = False
        return out + self._take(text)

    def feed_thought(self, text: str) -> list[Part]:
        """Take a piece of reasoning the engine reported apart from the answer."""
        out = self._switch(True)
        self._apart = True
        return out + self._take(text)

    def _switch(self, thinking: bool) -> list[Part]:
        """Begin thoughts or answer, as an opening or closing tag would."""
        out: list[Part] = []
        if thinking != self.thinking:
            held, self._held = self._held, ""
            self._emit(out, held.rstrip())
            self.thinking, self._fresh = thinking, True
        return out

    def _take(self, text: str) -> list[Part]:
        out: list[Part] = []
        buffer = self._held + text
        while True:
            if self._fresh:
                buffer = buffer.lstrip()
                if not buffer:
                    self._held = ""
                    return out
                self._fresh = False
                self._blank = True
            tags = (CLOSE,) if self.thinking else (OPEN, CLOSE)
            hits = [(i, tag) for tag in tags if (i := buffer.find(tag)) >= 0]
            if not hits:
                break
            at, tag = min(hits)
            self._emit(out, buffer[:at].rstrip())
            buffer = buffer[at + len(tag) :]
            if tag == OPEN or self.thinking:
                self.thinking = tag == OPEN
                self._fresh = True
            else:  # a stray </think> in the answer just goes; at its very start, so does the blank after it
                self._fresh = self._blank
        cut = held_from(buffer, tags)
        self._held = buffer[cut:]
        self._emit(out, buffer[:cut])
        return out

    def flush(self) -> list[Part]:
        """The text still held once the answer is over (a partial tag is text after all)."""
        out: list[Part] = []
        held, self._held = self._held, ""
        self._emit(out, held.rstrip())
        return out

    def _emit(self, out: list[Part], text: str) -> None:
        if text:
            out.append((self.thinking, text))
            self._blank = False


class NoThoughts:
    """The splitter for a model that writes no think blocks: all of its text is answer."""

    def feed(self, text: str) -> list[Part]:
        return [(False, text)] if text else []

    def feed_thought(self, text: str) -> list[Part]:
        return [(True, text)] if text else []

    def flush(self) -> list[Part]:
        return []
