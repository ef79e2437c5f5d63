"""A chat as Markdown, both ways: the export a person reads, and reading that export back.

The writer and the reader share the markers below, so a chat exported as Markdown imports as the
same chat: its title, its own system prompt and preset, each message, an answer's thoughts (a
quote before it) and its tool calls with their results (quotes after the text they followed).
What Markdown does not carry (versions, the model a chat asks, its tools) is not restored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from client.state import Call, Chat, Round, Turn, restore, sent_text, title_of

YOU, ASSISTANT = "You", "Assistant"
SYSTEM = "**System prompt:**"
NO_SYSTEM = "*No system prompt.*"
THOUGHTS = "> *Thoughts:*"
_HEADER = re.compile(rf"^\*\*({YOU}|{ASSISTANT}):\*\*(?: \((.+)\))?$")
_PRESET = re.compile(r"^\*Sampling preset: (.+)\*$")
_CALL = re.compile(r"^> \*Tool call:\* `([^`]*)` `(.*)`$")
_SAID = re.compile(r"^> \*(Result|Error):\*$")


IMAGE = "*Image: {name}*"  # an image a message had, by name (its bytes are in the JSON export only)
_IMAGE = re.compile(r"\*Image: [^*]+\*")


def export_markdown(chat: Chat) -> str:
    lines = [f"# {title_of(chat)}", ""]
    if chat.system is not None:  # its own: the reader cannot know the global one
        lines += [SYSTEM, "", chat.system, ""] if chat.system.strip() else [NO_SYSTEM, ""]
    if chat.preset:
        lines += [f"*Sampling preset: {chat.preset}*", ""]
    for turn in chat.turns:
        who = YOU if turn.user else ASSISTANT
        by = f" ({turn.model})" if turn.model and not turn.user else ""
        lines += [f"**{who}:**{by}", ""]
        if turn.thoughts:  # a quote before the answer, as the page shows them folded above it
            lines += [THOUGHTS, ">", *_quoted(turn.thoughts), ""]
        for r in turn.rounds:
            lines += ([r.text, ""] if r.text else []) + _calls_markdown(r.calls)
        lines += [IMAGE.format(name=image.name) for image in turn.images] + ([""] if turn.images else [])
        lines += [sent_text(turn), ""] + _calls_markdown(turn.calls)
    return "\n".join(lines)


def _quoted(text: str) -> Iterator[str]:
    return (f"> {line}".rstrip() for line in text.splitlines())


def _calls_markdown(calls: tuple[Call, ...]) -> list[str]:
    """Tool calls as quotes: the call, then its result (or error)."""
    lines: list[str] = []
    for call in calls:
        said = "Error" if call.is_error else "Result"
        lines += [f"> *Tool call:* `{call.name}` `{call.arguments}`", ">", f"> *{said}:*", ">"]
        lines += [*_quoted(call.result), ""]
    return lines


def is_markdown_export(text: str) -> bool:
    """Whether `text` looks like our Markdown export: a title, then at least one message."""
    lines = text.lstrip().splitlines()
    return bool(lines) and lines[0].startswith("# ") and any(_HEADER.match(line) for line in lines)


def import_markdown(text: str, chat_id: str, now: float) -> Chat:
    """The chat of a Markdown export, dated `now`; ValueError if `text` is not one."""
    if not is_markdown_export(text):
        raise ValueError("not a Markdown chat export")
    lines = text.lstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    system, preset = _preamble(lines[1 : starts[0]])
    turns = []
    for at, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        header = _HEADER.match(lines[at])
        assert header is not None
        body = lines[at + 1 : end]
        if header[1] == YOU:  # its images' bytes are not in Markdown: their lines go
            turns.append(Turn(user=True, text=_joined([line for line in body if not _IMAGE.fullmatch(line)])))
        else:
            turns.append(_answer(body, header[2] or ""))
    chat = Chat(turns=tuple(turns), id=chat_id, title=lines[0][2:].strip(), updated=now, system=system, preset=preset)
    return restore(chat)


def _preamble(lines: list[str]) -> tuple[str | None, str]:
    """The chat's own system prompt (None: the global one) and preset, before its first message."""
    system: str | None = None
    preset = ""
    kept = list(lines)
    for i, line in enumerate(kept):
        found = _PRESET.match(line)
        if found:
            preset = found[1]
            kept = kept[:i]
            break
    if any(line == NO_SYSTEM for line in kept):
        system = ""
    elif SYSTEM in kept:
        system = _joined(kept[kept.index(SYSTEM) + 1 :])
    return system, preset


def _joined(lines: list[str]) -> str:
    """Lines as one text, without the blank lines the export puts around it."""
    return "\n".join(lines).strip("\n")


def _unquoted(line: str) -> str:
    return line[2:] if line.startswith("> ") else line[1:]


def _answer(body: list[str], model: str) -> Turn:
    """A model's answer: its thoughts, its rounds of tool calls (each after its text), its text."""
    i = 0
    while i < len(body) and not body[i].strip():
        i += 1
    thoughts = ""
    if i < len(body) and body[i] == THOUGHTS:
        i += 2 if i + 1 < len(body) and body[i + 1] == ">" else 1
        quoted = []
        while i < len(body) and body[i].startswith(">"):
            quoted.append(_unquoted(body[i]))
            i += 1
        thoughts = "\n".join(quoted)
    rounds: list[Round] = []
    text: list[str] = []
    calls: list[Call] = []
    while i < len(body):
        line = body[i]
        found = _CALL.match(line)
        if found is None:
            if calls and not line.strip():
                i += 1
                continue
            if calls:  # text after a round of calls: the answer went on
                rounds.append(Round(_joined(text), tuple(calls)))
                text, calls = [], []
            text.append(line)
            i += 1
            continue
        call, i = _call(body, i, found, len(calls) + sum(len(r.calls) for r in rounds))
        calls.append(call)
    if calls:
        rounds.append(Round(_joined(text), tuple(calls)))
        text = []
    return Turn(user=False, text=_joined(text), model=model, thoughts=thoughts, rounds=tuple(rounds))


def _call(body: list[str], i: int, found: re.Match[str], n: int) -> tuple[Call, int]:
    """The tool call quoted at line `i`, with its result; and the line after it."""
    i += 1
    quoted = []
    while i < len(body) and body[i].startswith(">"):
        quoted.append(_unquoted(body[i]))
        i += 1
    # "", then "*Result:*" or "*Error:*", then "", then the result's lines
    said = next((j for j, q in enumerate(quoted) if _SAID.match(f"> {q}")), None)
    is_error = said is not None and quoted[said] == "*Error:*"
    result = quoted[said + 2 :] if said is not None else []
    call = Call(f"imported-{n}", found[1], found[2], state="done", result="\n".join(result), is_error=is_error)
    return call, i
