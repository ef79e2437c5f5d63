"""Split a model's thoughts (`<think>…</think>`) from its answer, however the tokenizer cuts the text.

Thinking models write their reasoning between `<think>` and `</think>`; templates such as
DeepSeek-R1's and QwQ's open the block in the prompt itself, so such an answer starts inside it
(`Splitter(thinking=True)`). Engines that report reasoning apart (llama.cpp's and vLLM's
`reasoning_content`) pass it on wrapped in the same tags (`tagged`), so this is the one place
where thoughts are told from the answer, for every engine.

The answer never contains either tag: `<think>` opens thoughts, a stray `</think>` is dropped.
Text that might be the start of a tag is held back until it is completed or proven harmless, and
so is whitespace at the end of either kind of text: thoughts and answer neither start nor end in
blank space (the blank line after `</think>` does not start the answer).
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"

Piece = tuple[bool, str]  # (is thought, text)


def opens_thinking(rendered: str) -> bool:
    """Whether a rendered prompt leaves the model inside a think block (its template opened one)."""
    return rendered.rstrip().endswith(OPEN)


class Splitter:
    def __init__(self, thinking: bool = False) -> None:
        self.thinking = thinking
        self._held = ""
        self._fresh = True  # at the start of thoughts or answer: leading whitespace is dropped
        self._blank = True  # nothing of the current thoughts or answer has gone out yet

    def feed(self, text: str) -> list[Piece]:
        """Take the next piece of model output; return the thought and answer text now safe to show."""
        out: list[Piece] = []
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
        cut = _hold_from(buffer, tags)
        self._held = buffer[cut:]
        self._emit(out, buffer[:cut])
        return out

    def flush(self) -> list[Piece]:
        """The text still held once the answer is over (a partial tag is text after all)."""
        out: list[Piece] = []
        held, self._held = self._held, ""
        self._emit(out, held.rstrip())
        return out

    def _emit(self, out: list[Piece], text: str) -> None:
        if text:
            out.append((self.thinking, text))
            self._blank = False


class NoThoughts:
    """The splitter for a model that writes no think blocks: all of its text is answer."""

    def feed(self, text: str) -> list[Piece]:
        return [(False, text)] if text else []

    def flush(self) -> list[Piece]:
        return []


def _hold_from(buffer: str, tags: tuple[str, ...]) -> int:
    """Where the text that must wait starts: a possible tag at the end, and the whitespace before it."""
    cut = len(buffer)
    for k in range(min(len(buffer), max(map(len, tags)) - 1), 0, -1):
        if any(tag.startswith(buffer[-k:]) for tag in tags):
            cut = len(buffer) - k
            break
    while cut > 0 and buffer[cut - 1].isspace():
        cut -= 1
    return cut


class Tagger:
    """Engines that report reasoning in a field of its own: both fields as one text, the
    reasoning wrapped in think tags, for the `Splitter` to take apart again."""

    def __init__(self) -> None:
        self._open = False

    def tagged(self, reasoning: object, content: object) -> str:
        text = ""
        if isinstance(reasoning, str) and reasoning:
            text += reasoning if self._open else OPEN + reasoning
            self._open = True
        if isinstance(content, str) and content:
            text += CLOSE + content if self._open else content
            self._open = False
        return text
