"""One chat as the browser holds it: immutable values and pure transitions, no DOM.

Every change is a function from the old value to a new one, so the view re-renders from a
single source of truth and tests need no browser. The values are frozen msgspec Structs so
that the same objects are what the page saves (client.library) and exports as JSON. The wire
`Conversation` is derived from a chat (`request_for`), never stored beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from msgspec import Struct
from msgspec.structs import replace

from client.attachments import Attachment, compose
from client.errors import CONNECTION_LOST, CUT_OFF, LOST, plain
from client.images import ImageRef
from wire.events import (
    AnswerEvent,
    DoneEvent,
    ErrorEvent,
    LoadingEvent,
    ProgressEvent,
    QueuedEvent,
    ThoughtEvent,
    TokenEvent,
    ToolCallEvent,
)
from wire.types import (
    MAX_TEXT,
    SYSTEM_MAX,
    Conversation,
    ConverseRequest,
    Message,
    SamplingParams,
    SystemPrompt,
    ToolSpec,
    ToolUse,
)

# pending: asked, nothing back yet (the view shows "..."); streaming: tokens arriving;
# calling: the model called tools, and the answer waits for the user's word on each call and for
# the results; done: finished; error: failed (text holds the reason); stopped: cut short by the
# user, or by a page reload mid-answer that could not be resumed (the note says which). Stopped
# text is kept as history.
Status = Literal["pending", "streaming", "calling", "done", "error", "stopped"]
TITLE_CHARS = 60
# asking: waits for the user to allow or deny it; running: allowed, its result on its way; done: has its result.
CallState = Literal["asking", "running", "done"]
DENIED = "The user did not allow this call."
STOPPED_CALL = "The user stopped the answer before this call ran."


class Call(Struct, frozen=True, omit_defaults=True):
    """A tool call the model made in an answer, and what came of it (the result the model reads:
    the tool's answer, its error, or the user's refusal)."""

    id: str
    name: str  # the name the model called the tool by (client.tools)
    arguments: str  # JSON, as the model wrote it
    state: CallState = "asking"
    result: str = ""
    is_error: bool = False


class Round(Struct, frozen=True, omit_defaults=True):
    """An answer's text up to a round of tool calls, and those calls with their results."""

    text: str = ""
    calls: tuple[Call, ...] = ()


class Turn(Struct, frozen=True, omit_defaults=True):
    user: bool
    text: str
    status: Status = "done"
    note: str = ""  # small print under a model answer: queue position, stop reason, speed
    truncated_turns: int = 0  # old turns the server dropped to fit this answer in its context
    model: str = ""  # the model that wrote this answer (DoneEvent.model); empty: not known
    tokens: int = 0  # the server's count for this answer: prompt + completion tokens (DoneEvent)
    thoughts: str = ""  # the model's reasoning before its answer (ThoughtEvent), shown folded
    files: tuple[Attachment, ...] = ()  # text files attached to a user's message (client.attachments)
    images: tuple[ImageRef, ...] = ()  # images attached to a user's message, by digest (client.images)
    answer_id: str = ""  # the server's id for this answer while it is on its way (AnswerEvent): a reload resumes it
    reading: tuple[int, int] | None = None  # (read, of) prompt tokens while the model reads the prompt (ProgressEvent)
    rounds: tuple[Round, ...] = ()  # an answer's earlier rounds of tool calls; `text` goes on after them
    calls: tuple[Call, ...] = ()  # the tool calls after `text`, while the answer waits on them (or stopped them)
    # The answer stopped short (at its token limit, or where the connection dropped): Continue asks for the rest.
    unfinished: bool = False
    kept: str = ""  # while the answer is being continued: its text before (a replay of the continuation starts there)
    # When it was written (seconds since the epoch): a message when sent, an answer when asked for; 0: not known
    # (chats from before this was kept show no time).
    written: float = 0.0


class Branch(Struct, frozen=True, omit_defaults=True):
    """One version of a chat from a fork on: its turns from the fork's position, and the forks within them."""

    turns: tuple[Turn, ...] = ()
    forks: tuple[Fork, ...] = ()


class Fork(Struct, frozen=True, omit_defaults=True):
    """The versions of the chat from turn `at` on (Regenerate and Edit make one each).

    The shown version (`shown`) lives in the chat's own turns; its slot here is an empty placeholder.
    """

    at: int
    versions: tuple[Branch, ...]
    shown: int


class Chat(Struct, frozen=True, omit_defaults=True):
    turns: tuple[Turn, ...] = ()  # the visible branch: what is shown and what the model is sent
    id: str = ""
    title: str = ""  # empty: derived from the first message (see `title_of`)
    updated: float = 0.0  # when the user last sent, for "newest first"
    model: str = ""  # the model this chat asks (a file name from GET /api/models); empty: the server's default
    forks: tuple[Fork, ...] = ()  # the earlier versions, by position in `turns` (each `at` is unique)
    system: SystemPrompt | None = None  # its own system prompt, kept as written; None: the global one; "": none
    preset: str = ""  # the name of its sampling preset (client.presets); empty: the global settings
    tools: tuple[str, ...] = ()  # the tools it offers the model, by key (client.tools.key)
    allowed: tuple[str, ...] = ()  # the tools whose calls run without asking, in this chat, by key

    @property
    def busy(self) -> bool:
        """An answer is on its way: sending now would interleave two answers."""
        return bool(self.turns) and self.turns[-1].status in ("pending", "streaming", "calling")


def images_in(chat: Chat) -> tuple[ImageRef, ...]:
    """Every image the chat's messages hold, its earlier versions' included."""

    def walk(turns: tuple[Turn, ...], forks: tuple[Fork, ...]) -> list[ImageRef]:
        found = [image for t in turns for image in t.images]
        for fork in forks:
            for branch in fork.versions:
                found += walk(branch.turns, branch.forks)
        return found

    return tuple(walk(chat.turns, chat.forks))


def title_of(chat: Chat) -> str:
    if chat.title:
        return chat.title
    first = next((t.text or ", ".join([*(f.name for f in t.files), *(i.name for i in t.images)])
                  for t in chat.turns if t.user), "")
    words = " ".join(first.split())
    return clip(words, TITLE_CHARS) if words else "New chat"


def clip(words: str, limit: int) -> str:
    """`words` in at most `limit` characters: cut after a whole word where one ends in the second
    half (a word cut in two reads as another word), else mid-word; "…" marks the cut."""
    if len(words) <= limit:
        return words
    space = words.rfind(" ", limit // 2, limit)  # a space right after the cut still ends a whole word
    return (words[:space] if space > 0 else words[: limit - 1]).rstrip() + "…"


def _ask(chat: Chat, turns: tuple[Turn, ...], now: float) -> Chat:
    return replace(chat, turns=turns + (Turn(user=False, text="", status="pending", written=now),), updated=now)


def submit(
    chat: Chat, text: str, now: float = 0.0, files: tuple[Attachment, ...] = (), images: tuple[ImageRef, ...] = ()
) -> Chat:
    """Add the user's message (with its attached files and images) and an empty model answer;
    unchanged if blank (no text, no files, no images) or busy."""
    if chat.busy or not (text.strip() or files or images):
        return chat
    return _ask(chat, chat.turns + (Turn(user=True, text=text, files=files, images=images, written=now),), now)


def _fork_at(chat: Chat, at: int) -> Fork | None:
    return next((f for f in chat.forks if f.at == at), None)


def _branch(chat: Chat, at: int, new: tuple[Turn, ...], now: float) -> Chat:
    """Keep the chat from turn `at` on as a version, and continue with `new` turns and a pending answer."""
    kept = Branch(turns=chat.turns[at:], forks=tuple(f for f in chat.forks if f.at > at))
    fork = _fork_at(chat, at)
    if fork is None:
        fork = Fork(at=at, versions=(kept, Branch()), shown=1)
    else:
        versions = fork.versions[: fork.shown] + (kept,) + fork.versions[fork.shown + 1 :]
        fork = Fork(at=at, versions=versions + (Branch(),), shown=len(versions))
    forks = tuple(f for f in chat.forks if f.at < at) + (fork,)
    return _ask(replace(chat, forks=forks), chat.turns[:at] + new, now)


def regenerate(chat: Chat, now: float = 0.0) -> Chat:
    """Ask again for the last answer, keeping the old one as a version (a failed one is just replaced);
    unchanged if busy or nothing to redo."""
    if chat.busy or len(chat.turns) < 2 or chat.turns[-1].user:
        return chat
    if chat.turns[-1].status == "error":
        return _ask(chat, chat.turns[:-1], now)
    return _branch(chat, len(chat.turns) - 1, (), now)


def edit(
    chat: Chat,
    index: int,
    text: str,
    now: float = 0.0,
    files: tuple[Attachment, ...] = (),
    images: tuple[ImageRef, ...] = (),
) -> Chat:
    """Replace user message `index` (with `files` and `images` attached) and ask again from there;
    the old message and everything after it stay as a version."""
    blank = not (text.strip() or files or images)
    if chat.busy or blank or not 0 <= index < len(chat.turns) or not chat.turns[index].user:
        return chat
    return _branch(chat, index, (Turn(user=True, text=text, files=files, images=images, written=now),), now)


def versions_at(chat: Chat, index: int) -> tuple[int, int] | None:
    """(shown version, how many), counting from 1, for turn `index`; None where it has no versions."""
    fork = _fork_at(chat, index)
    return None if fork is None else (fork.shown + 1, len(fork.versions))


def switch_version(chat: Chat, index: int, step: int) -> Chat:
    """Show the version `step` away (-1: previous, 1: next) at turn `index`; unchanged at either end or while busy."""
    fork = _fork_at(chat, index)
    if chat.busy or fork is None or not 0 <= fork.shown + step < len(fork.versions):
        return chat
    shown = fork.shown + step
    kept = Branch(turns=chat.turns[index:], forks=tuple(f for f in chat.forks if f.at > index))
    versions = list(fork.versions)
    versions[fork.shown], chosen, versions[shown] = kept, versions[shown], Branch()
    before = tuple(f for f in chat.forks if f.at < index)
    forks = before + (Fork(at=index, versions=tuple(versions), shown=shown),) + chosen.forks
    return replace(chat, turns=chat.turns[:index] + chosen.turns, forks=forks)


def _with_last(chat: Chat, **changes: object) -> Chat:
    return replace(chat, turns=chat.turns[:-1] + (replace(chat.turns[-1], **changes),))


def _answering(chat: Chat) -> bool:
    return chat.busy and not chat.turns[-1].user


def started(chat: Chat, answer_id: str) -> Chat:
    """The server named the answer: kept with it so that a reloaded page can read it again."""
    if not _answering(chat):
        return chat
    return _with_last(chat, answer_id=answer_id)


def resumable(chat: Chat) -> str:
    """The id of the chat's answer that is on its way, if the server named it; else ""."""
    return chat.turns[-1].answer_id if _answering(chat) else ""


def replay(chat: Chat) -> Chat:
    """The answer is being read again from its start (of its round): the text saved before may be stale."""
    if not _answering(chat):
        return chat
    kept = chat.turns[-1].kept
    thoughts = chat.turns[-1].thoughts if kept else ""  # a continuation writes no new thoughts
    return _with_last(chat, text=kept, thoughts=thoughts, status="pending", note="", calls=())


def called(chat: Chat, event: ToolCallEvent) -> Chat:
    """The model calls a tool: the call waits for the user's word once the answer's round ends."""
    if not _answering(chat):
        return chat
    call = Call(event.id, event.name, event.arguments)
    return _with_last(chat, calls=chat.turns[-1].calls + (call,), status="streaming", note="", reading=None)


def waiting_calls(chat: Chat) -> tuple[Call, ...]:
    """The calls of the chat's answer that wait for the user's word."""
    if not chat.turns or chat.turns[-1].status != "calling":
        return ()
    return tuple(c for c in chat.turns[-1].calls if c.state == "asking")


def _with_call(chat: Chat, call_id: str, **changes: object) -> Chat:
    last = chat.turns[-1] if chat.turns else None
    if last is None or last.status != "calling" or not any(c.id == call_id for c in last.calls):
        return chat
    calls = tuple(replace(c, **changes) if c.id == call_id else c for c in last.calls)
    return _with_last(chat, calls=calls)


def run_call(chat: Chat, call_id: str) -> Chat:
    """The user allowed the call: it runs."""
    return _with_call(chat, call_id, state="running")


def settle_call(chat: Chat, call_id: str, result: str, is_error: bool = False) -> Chat:
    """The call has its result (an error, or the user's refusal, reads to the model alike)."""
    return _with_call(chat, call_id, state="done", result=result, is_error=is_error)


def next_round(chat: Chat) -> Chat:
    """Every call of the answer has its result: the answer goes on from them (pending again, its
    text and calls kept as a round); unchanged until then."""
    last = chat.turns[-1] if chat.turns else None
    if last is None or last.status != "calling" or any(c.state != "done" for c in last.calls):
        return chat
    rounds = last.rounds + (Round(last.text, last.calls),)
    return _with_last(chat, rounds=rounds, text="", calls=(), status="pending", note="")


def allow_tool(chat: Chat, key: str) -> Chat:
    """The tool's calls run without asking in this chat from now on ("Allow for this chat")."""
    return chat if key in chat.allowed else replace(chat, allowed=chat.allowed + (key,))


def choose_tools(chat: Chat, keys: tuple[str, ...]) -> Chat:
    """The tools the chat offers the model, from its next answer on."""
    return chat if chat.tools == keys else replace(chat, tools=keys)


def append_token(chat: Chat, text: str) -> Chat:
    if not _answering(chat):
        return chat
    return _with_last(chat, text=chat.turns[-1].text + text, status="streaming", note="", reading=None)


def append_thought(chat: Chat, text: str) -> Chat:
    if not _answering(chat):
        return chat
    return _with_last(chat, thoughts=chat.turns[-1].thoughts + text, status="streaming", note="", reading=None)


def queued(chat: Chat, position: int) -> Chat:
    if not _answering(chat):
        return chat
    return _with_last(chat, note=f"Queued: position {position}")


def reading(chat: Chat, read: int, of: int) -> Chat:
    """The model reads the prompt: how far it has come shows in the pending answer, until its first token."""
    if not _answering(chat) or chat.turns[-1].status != "pending":
        return chat
    return _with_last(chat, reading=(read, of), note="")


def loading(chat: Chat, model: str) -> Chat:
    """The chat's model is being loaded: say so under the pending answer."""
    if not _answering(chat):
        return chat
    return _with_last(chat, note=loading_note(model))


def loading_note(model: str) -> str:
    return f"Loading {model or 'the model'}…"


def finish(chat: Chat, done: DoneEvent, asked: str = "") -> Chat:
    """The answer is complete; `asked` names its model when the server does not (an older server)."""
    if not _answering(chat):
        return chat
    used = done.prompt_tokens + done.completion_tokens
    changes = {"truncated_turns": done.truncated_turns, "model": done.model or asked, "tokens": used}
    calling = bool(chat.turns[-1].calls) and done.stop_reason != "cancelled"
    note = describe_done(done, calling)
    short = done.stop_reason == "length" and not calling
    status = "calling" if calling else "done"
    return _with_last(chat, status=status, note=note, answer_id="", unfinished=short, kept="", **changes)


def fail(chat: Chat, message: str) -> Chat:
    """Show an error as the model's answer, keeping any text that already arrived."""
    if not _answering(chat):
        return chat
    last = chat.turns[-1]
    if last.kept:  # a continuation that failed: the answer so far stays, and Continue can try again
        return _with_last(chat, status="stopped", note=message, answer_id="", unfinished=True, kept="")
    text = f"{last.text}\n\n{message}" if last.text else message
    return _with_last(chat, text=text, status="error", note="", answer_id="")


def cut_off(chat: Chat) -> Chat:
    """The connection dropped mid-answer: what arrived stays, as an answer, with Continue after it;
    an answer with nothing yet is a failed one (the user's message stays for Regenerate)."""
    if not _answering(chat):
        return chat
    last = chat.turns[-1]
    if not last.text or last.calls:
        return fail(chat, CONNECTION_LOST)
    return _with_last(chat, status="stopped", note=CUT_OFF, answer_id="", unfinished=True, kept="", reading=None)


def continuable(turn: Turn) -> bool:
    """An answer that stopped short, which the model may go on writing (one with tool calls goes
    on through its calls instead)."""
    return not turn.user and turn.unfinished and bool(turn.text) and not turn.rounds and not turn.calls


def can_continue(chat: Chat) -> bool:
    """The chat ends in an answer the model may go on writing, and nothing is on its way."""
    return not chat.busy and bool(chat.turns) and continuable(chat.turns[-1])


def continue_answer(chat: Chat, now: float = 0.0) -> Chat:
    """Ask the model to go on with the chat's last answer, which stopped short: what it writes
    joins the same answer. Unchanged if there is no such answer."""
    if not can_continue(chat):
        return chat
    last = chat.turns[-1]
    return replace(_with_last(chat, status="pending", note="", unfinished=False, kept=last.text), updated=now)


def continuing(chat: Chat) -> str:
    """The text of the answer being continued, while its continuation is asked for; else ""."""
    return chat.turns[-1].kept if _answering(chat) else ""


def stop(chat: Chat, why: str = "Stopped", model: str = "") -> Chat:
    """End the streaming answer here, keeping what arrived; `model`: the one asked, kept if it wrote any."""
    if not _answering(chat):
        return chat
    last = chat.turns[-1]
    wrote = model if last.text or last.thoughts or last.rounds or last.calls else ""
    wrote = wrote or last.model  # stopped while its calls waited: the answer so far named its model
    # a call that never ran still has a result: the model reads, in a later turn, that it was stopped
    calls = tuple(c if c.state == "done" else replace(c, state="done", result=STOPPED_CALL, is_error=True)
                  for c in last.calls)
    return _with_last(chat, status="stopped", note=why, model=wrote, answer_id="", calls=calls, kept="")


def _sound(forks: tuple[Fork, ...], start: int, end: int) -> tuple[Fork, ...]:
    """The forks that fit turns start..end-1 (one per position, a version shown), their versions' forks likewise."""
    out: list[Fork] = []
    for f in sorted(forks, key=lambda f: f.at):
        if not start <= f.at < end or not 0 <= f.shown < len(f.versions) or (out and out[-1].at == f.at):
            continue
        versions = tuple(replace(b, forks=_sound(b.forks, f.at + 1, f.at + len(b.turns))) for b in f.versions)
        out.append(replace(f, versions=versions))
    return tuple(out)


INTERRUPTED = "Interrupted: the page was reloaded during this answer"


def restore(chat: Chat, resume: bool = False) -> Chat:
    """A chat read back from storage or a file: versions that do not fit its turns are dropped, and
    an answer that was on its way when the page went away is over, unless `resume` (the page's
    own storage: the app reads the answer again from the server) and the server had named it."""
    forks = _sound(chat.forks, 0, len(chat.turns))
    if forks != chat.forks:
        chat = replace(chat, forks=forks)
    if resume and resumable(chat):
        return chat
    if resume and chat.turns and chat.turns[-1].status == "calling":
        # the answer waits on its calls still; one that was running when the page went away is asked again
        calls = tuple(replace(c, state="asking") if c.state == "running" else c for c in chat.turns[-1].calls)
        return _with_last(chat, calls=calls)
    return stop(chat, INTERRUPTED)


def apply_event(chat: Chat, event: object, asked: str = "") -> Chat:
    """Fold one event from the converse stream into the chat.

    `asked`: the model the request went to, recorded on the answer if the done event names none.
    """
    if isinstance(event, TokenEvent):
        return append_token(chat, event.text)
    if isinstance(event, ThoughtEvent):
        return append_thought(chat, event.text)
    if isinstance(event, ToolCallEvent):
        return called(chat, event)
    if isinstance(event, AnswerEvent):
        return started(chat, event.id)
    if isinstance(event, QueuedEvent):
        return queued(chat, event.position)
    if isinstance(event, LoadingEvent):
        return loading(chat, event.model)
    if isinstance(event, ProgressEvent):
        return reading(chat, event.processed, event.total)
    if isinstance(event, DoneEvent):
        return finish(chat, event, asked)
    if isinstance(event, ErrorEvent):
        return cut_off(chat) if event.type in LOST else fail(chat, plain(event))
    return chat


STOP_REASONS = {"stop": "finished", "length": "hit the max tokens limit", "cancelled": "cancelled"}


def describe_done(done: DoneEvent, calling: bool = False) -> str:
    """The stats line under an answer; `calling`: it ended in tool calls, which wait."""
    why = "called a tool" if calling else STOP_REASONS.get(done.stop_reason, done.stop_reason)
    return " · ".join(_stats(done, why))


def _stats(done: DoneEvent, why: str) -> list[str]:
    """An answer's numbers, `why` it ended after the speeds (the reader's eye finds it there)."""
    parts = [f"{done.completion_tokens} tokens"]
    if done.tokens_per_s:
        parts.append(f"{done.tokens_per_s:.1f} tok/s")
    if done.ttft_s is not None:
        parts.append(f"first token {done.ttft_s:.2f} s")
    parts.append(why)
    if done.truncated_turns:
        s = "" if done.truncated_turns == 1 else "s"
        parts.append(f"{done.truncated_turns} old message{s} left out to fit the context")
    return parts


def stopped_stats(chat: Chat, index: int, text: str, done: DoneEvent) -> Chat:
    """The server's `done` for an answer the user stopped (it comes after the page stopped it):
    its numbers and model join the stopped answer at `index`, if that is still the answer stopped
    (its `text` as it was) and has none yet; unchanged otherwise, or when the model wrote nothing."""
    turn = chat.turns[index] if 0 <= index < len(chat.turns) else None
    if turn is None or turn.user or turn.status != "stopped" or turn.text != text or turn.tokens:
        return chat
    if not done.completion_tokens:
        return chat
    note = " · ".join(_stats(done, turn.note or "Stopped"))
    changes = {"note": note, "model": done.model or turn.model, "tokens": done.prompt_tokens + done.completion_tokens,
               "truncated_turns": done.truncated_turns}
    turns = chat.turns[:index] + (replace(turn, **changes),) + chat.turns[index + 1 :]
    return replace(chat, turns=turns)


def request_for(
    chat: Chat,
    params: SamplingParams | None = None,
    tools: tuple[ToolSpec, ...] = (),
    image_url: Callable[[ImageRef], str] = lambda _image: "",
) -> ConverseRequest:
    """The wire request for the pending answer: the history without failed or empty answers (each
    answer with its thoughts: the model's template decides whether it sees them again, and with its
    rounds of tool calls), to the chat's model (none named: the server's default), offering `tools`.
    Each user message carries its images as `image_url(image)` gives their data URLs ("": this
    browser no longer has it, and it goes without).
    An answer that goes on after its calls ends the history with them. A model's answer or thoughts
    longer than a message may be (a long answer can outgrow MAX_TEXT) go cut to fit, so the chat can go on."""
    messages: list[Message] = []
    for t in chat.turns:
        if t.user:
            messages.append(Message(True, sent_text(t), images=[u for u in map(image_url, t.images) if u]))
        else:
            messages += _said(t)
    so_far = continuing(chat)
    if so_far:  # the answer goes on from its end: the model reads its own answer open, and no tools
        messages.append(Message(False, so_far[-MAX_TEXT:]))
        tools = ()
    return ConverseRequest(
        conversation=Conversation(messages=messages),
        params=params if params is not None else SamplingParams(),
        model=chat.model or None,
        tools=list(tools),
        continue_=bool(so_far),
    )


def _said(turn: Turn) -> list[Message]:
    """A model's answer as messages: a message per round of calls, then the text after them."""
    if turn.status == "error":
        return []
    said = [Message(False, r.text[:MAX_TEXT], calls=[_use(c) for c in r.calls]) for r in turn.rounds]
    if turn.status in ("done", "stopped") and (turn.text or turn.calls):
        calls = [_use(c) for c in turn.calls]
        said.append(Message(False, turn.text[:MAX_TEXT], turn.thoughts[-MAX_TEXT:], calls))
    return said


def _use(call: Call) -> ToolUse:
    return ToolUse(call.id, call.name, call.arguments[:MAX_TEXT], call.result[:MAX_TEXT], call.is_error)


def sent_text(turn: Turn) -> str:
    """What the model reads of a turn: a user's message with its files fenced in (client.attachments)."""
    return compose(turn.text, turn.files) if turn.files else turn.text


def choose_model(chat: Chat, model: str) -> Chat:
    """The chat asks `model` from its next answer on (empty: the server's default)."""
    return chat if chat.model == model else replace(chat, model=model)


def configure(chat: Chat, system: str | None, preset: str) -> Chat:
    """The chat's own system prompt (None: the global one; all whitespace: none at all) and sampling
    preset ("": the global settings), from its next answer on. The prompt is kept as written, up to
    SYSTEM_MAX characters."""
    if system is not None:
        system = system[:SYSTEM_MAX] if system.strip() else ""
    if (chat.system, chat.preset) == (system, preset):
        return chat
    return replace(chat, system=system, preset=preset)
