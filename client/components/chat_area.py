"""ChatArea: renders the open chat, user bubbles right and blue, model bubbles left and grey.

Rendering is keyed by position: one row per turn is created once and afterwards only what
changed is updated, so a streamed token touches one bubble. User text is set through
`textContent` (with `whitespace-pre-wrap` for its line breaks); model answers are Markdown
turned into whitelisted elements by client.markdown and built here with createElement and
textContent, so no string from a message or a model is ever parsed as HTML.

A thinking model's thoughts show above its answer in a `<details>` block, collapsed, that streams
live: it is made once per answer and only its text grows, so a reader who opened it keeps it open.

Buttons under each message (and on code blocks) carry `data-action`; one listener on the list
handles them all, so re-rendering a row never leaks event proxies.

A big change renders what is on screen at once and the other rows in short browser tasks after
(client.render_order): for another chat, its last rows, as many as fill the view (the rows waiting
their turn are hidden, and the view keeps its distance from the bottom while they appear above
it); for a change in the open chat (Markdown arriving, a version switched early in a long chat),
its last rows and those in the view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from client import markdown, mathml, render_order
from client.browser import copy_text, listen, local_time
from client.components import tool_calls
from client.components.attachments import LIST_LABEL, chip_item
from client.components.code_runner import CodeRunner
from client.components.thumbnails import THUMB, BlobUrls, open_label, thumbnail
from client.gauge import DROPPED_LABEL, dropped
from client.images import ImageRef, lost
from client.nodes import El
from client.pictures import HELD, LOST
from client.sandbox import chat_files
from client.state import Call, Chat, Round, Turn, continuable, versions_at

PLACEHOLDER = "..."  # shown in the model's bubble until its first token arrives
READING_BAR = "mt-1 block h-2 w-48 max-w-full accent-blue-600"  # the prompt's reading, under its label

# Full class strings (not built from pieces) so Tailwind's scanner finds them in this file.
ROW_USER = "flex justify-end"
ROW_MODEL = "flex justify-start"
COL_USER = "flex max-w-[85%] min-w-0 flex-col items-end"
COL_MODEL = "flex max-w-[85%] min-w-0 flex-col items-start"
BUBBLE_BASE = "max-w-full break-words rounded-2xl px-4 py-2 leading-relaxed shadow-sm"
PLAIN = "whitespace-pre-wrap"
BUBBLE_USER = "rounded-br-md bg-blue-600 text-white"
BUBBLE_MODEL = "rounded-bl-md bg-gray-200 text-gray-900 dark:bg-gray-800 dark:text-gray-100"
BUBBLE_PENDING = "animate-pulse text-gray-600 dark:text-gray-300"
BUBBLE_ERROR = (
    "rounded-bl-md border border-red-300 bg-red-50 text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200"
)
# A turn the server left out to fit the context: greyed and dashed, with a label saying so.
BUBBLE_DROPPED = (
    "border border-dashed border-gray-400 bg-gray-100 text-gray-700 dark:border-gray-600 dark:bg-gray-900 "
    "dark:text-gray-300"
)
FILES = "mb-1 flex max-w-full flex-wrap justify-end gap-1"
IMAGE_BUTTON = (
    "block rounded-lg focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-blue-600 "
    "hover:opacity-90"
)
IMAGES_LABEL = "Attached images"
NOTE = "mt-1 px-2 text-xs text-gray-600 dark:text-gray-400"
# The folded thoughts above an answer: a summary line, and the thoughts as plain text.
THOUGHTS = "mb-1 max-w-full text-sm text-gray-600 dark:text-gray-300"
THOUGHTS_SUMMARY = (
    "cursor-pointer select-none rounded px-2 py-1 text-xs hover:bg-gray-200 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:hover:bg-gray-800"
)
THOUGHTS_TEXT = "mt-1 whitespace-pre-wrap break-words border-l-2 border-gray-300 pl-3 dark:border-gray-600"
THINKING = "Thinking…"  # the summary while thoughts stream and no answer text has come yet
THOUGHTS_LABEL = "Thoughts"
ACTIONS = "mt-1 flex gap-1 text-xs"
ACTION = (
    "rounded px-2 py-1 text-gray-600 hover:bg-gray-200 hover:text-gray-900 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:text-gray-300 dark:hover:bg-gray-800 dark:hover:text-white "
    "disabled:cursor-not-allowed disabled:opacity-50"
)

# The version switcher's arrows: a target of at least 32 px, 44 px on phones (fingers, not a pointer).
SWITCH = (
    "inline-flex min-h-8 min-w-8 items-center justify-center rounded text-sm text-gray-600 hover:bg-gray-200 "
    "hover:text-gray-900 focus-visible:outline-2 focus-visible:outline-blue-600 max-sm:min-h-11 max-sm:min-w-11 "
    "dark:text-gray-300 dark:hover:bg-gray-800 dark:hover:text-white disabled:cursor-not-allowed disabled:opacity-50"
)
# When a message was written: shown while the pointer is over its row or something in it has focus.
STAMP = "invisible self-center px-1 text-gray-600 group-focus-within:visible group-hover:visible dark:text-gray-400"
ROW = "group"  # each row, so that its parts can show on hover and focus (STAMP)
# A long message of the user's shows its first lines, faded out, until "Show all" unfolds it.
FOLD_LINES = 20
FOLD_CHARS = 2_000  # a long line wraps: this many characters fold too, whatever the lines
FOLDED = "max-h-72 overflow-hidden [mask-image:linear-gradient(to_bottom,black_70%,transparent)]"
SHOW_ALL, SHOW_LESS = "Show all", "Show less"
FOLD_TOGGLE = (
    "mt-1 rounded px-2 py-1 text-xs font-medium text-blue-700 hover:bg-gray-200 focus-visible:outline-2 "
    "focus-visible:outline-blue-600 dark:text-blue-300 dark:hover:bg-gray-800"
)

# (data-action, visible label, accessible name)
Action = tuple[str, str, str]
COPY = ("copy", "Copy", "Copy message")
EDIT = ("edit", "Edit", "Edit message")
REGENERATE = ("regenerate", "Regenerate", "Regenerate")
CONTINUE = ("continue", "Continue", "Continue this answer")  # after an answer that stopped short
# The version switcher ("‹ 1/2 ›"); an action ending in "-off" is a disabled button, "version" the count.
PREVIOUS = ("prev-version", "‹", "Previous version")
NEXT = ("next-version", "›", "Next version")


def folds(text: str) -> bool:
    """Whether a sent message is long enough to show folded (its whole text is kept, edited and exported)."""
    return len(text) > FOLD_CHARS or text.count("\n") >= FOLD_LINES


def switcher(versions: tuple[int, int] | None, busy: bool = False) -> tuple[Action, ...]:
    """The switcher for a turn with versions (shown, how many); none without. Disabled at the ends and while busy."""
    if versions is None:
        return ()
    shown, count = versions
    back = PREVIOUS if shown > 1 and not busy else (PREVIOUS[0] + "-off", *PREVIOUS[1:])
    on = NEXT if shown < count and not busy else (NEXT[0] + "-off", *NEXT[1:])
    return (back, ("version", f"{shown}/{count}", f"{shown}/{count}"), on)


def jump_shown(near_bottom: bool, busy: bool, unseen: bool) -> bool:
    """Whether "Jump to bottom" shows: the reader is away from the bottom while an answer streams,
    or while newer text than they have seen is below."""
    return not near_bottom and (busy or unseen)


def iso_time(seconds: float) -> str:
    """`seconds` since the epoch as a `<time>` element's machine-readable value (UTC)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BubbleView:
    """What one turn looks like; computed without a DOM so it can be tested anywhere."""

    role: str
    status: str
    row_class: str
    column_class: str
    bubble_class: str
    text: str
    note: str
    markdown: bool  # render `text` as Markdown (model answers) or as plain text
    actions: tuple[Action, ...]
    dropped: bool = False  # the server left this turn out of the last answer's prompt
    thoughts: str = ""  # the model's reasoning, shown folded above its answer
    thinking: bool = False  # thoughts are streaming and no answer text has come yet
    files: tuple[str, ...] = ()  # names of the files attached to a user's message, shown as chips
    images: tuple[tuple[ImageRef, str], ...] = ()  # a user's images, each with its state (Pictures.state)
    reading: tuple[int, int] | None = None  # (read, of) prompt tokens: a progress bar in place of the placeholder
    rounds: tuple[Round, ...] = ()  # rounds of tool calls before the text (client.components.tool_calls)
    calls: tuple[Call, ...] = ()  # tool calls after the text
    rich: bool = False  # Markdown is loaded (for the rounds' text, whatever the answer's status)
    written: float = 0.0  # when (client.state.Turn.written); 0: not known, no time shown
    long: bool = False  # a user's message shown folded, with "Show all"


def view_of(
    turn: Turn,
    last: bool = False,
    busy: bool = False,
    rich: bool = False,
    versions: tuple[int, int] | None = None,
    dropped: bool = False,
    image_state: Callable[[str], str] = lambda _digest: "",
) -> BubbleView:
    """`last`: the chat's final turn; `busy`: an answer streams; `rich`: Markdown is loaded;
    `versions`: (shown, how many) where the turn has versions; `dropped`: left out to fit the context;
    `image_state(digest)`: whether the page has that image's bytes to show (client.pictures.Pictures.state)."""
    view = _view_of(turn, last, busy, rich, versions)
    if turn.written:
        view = replace(view, written=turn.written)
    if turn.images:
        view = replace(view, images=tuple((image, image_state(image.digest)) for image in turn.images))
    if not dropped:
        return view
    look = view.bubble_class.replace(BUBBLE_USER, BUBBLE_DROPPED).replace(BUBBLE_MODEL, BUBBLE_DROPPED)
    note = " · ".join(part for part in (DROPPED_LABEL, view.note) if part)
    return replace(view, bubble_class=look, note=note, dropped=True)


def _view_of(turn: Turn, last: bool, busy: bool, rich: bool, versions: tuple[int, int] | None) -> BubbleView:
    actions: tuple[Action, ...] = switcher(versions, busy)
    if turn.user:
        actions += () if busy else (EDIT, COPY)
        look = f"{BUBBLE_BASE} {PLAIN} {BUBBLE_USER}"
        files = tuple(f.name for f in turn.files)
        view = BubbleView("user", turn.status, ROW_USER, COL_USER, look, turn.text, "", False, actions, files=files)
        return replace(view, long=folds(turn.text))
    pending = turn.status == "pending"
    if turn.status == "error":
        look = BUBBLE_ERROR
    elif pending:
        look = f"{BUBBLE_MODEL} {BUBBLE_PENDING}"
    else:
        look = BUBBLE_MODEL
    md = rich and turn.status in ("streaming", "done", "stopped")
    if not md:
        look = f"{look} {PLAIN}"
    reading = turn.reading if pending and not turn.text else None
    text = reading_label(reading) if reading else PLACEHOLDER if pending and not turn.text else turn.text
    if turn.status not in ("pending", "streaming", "calling"):
        more = (CONTINUE,) if last and continuable(turn) else ()
        actions += (*more, COPY, REGENERATE) if last else (COPY,)
    note = " · ".join(part for part in (turn.model, turn.note) if part)  # which model wrote it, beside its stats
    thinking = turn.status == "streaming" and not turn.text and not turn.calls
    return BubbleView(
        "model", turn.status, ROW_MODEL, COL_MODEL, f"{BUBBLE_BASE} {look}", text, note, md, actions,
        thoughts=turn.thoughts, thinking=thinking, reading=reading, rounds=turn.rounds, calls=turn.calls, rich=rich,
    )


def reading_label(reading: tuple[int, int]) -> str:
    read, of = reading
    return f"Reading the conversation… {read:,} / {of:,} tokens"


def build(document: Any, parent: Any, nodes: list[El | str]) -> None:
    """Markdown nodes -> DOM, with createElement(NS)/setAttribute/text nodes only."""
    for node in nodes:
        if isinstance(node, str):
            parent.append(document.createTextNode(node))
            continue
        if node.tag in mathml.TAGS:
            el = document.createElementNS(mathml.NS, node.tag)
        elif node.tag in markdown.TAGS:
            el = document.createElement(node.tag)
        else:
            build(document, parent, node.children)
            continue
        for name, value in node.attrs.items():
            el.setAttribute(name, value)
        build(document, el, node.children)
        parent.append(el)


Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]  # keeps the task referenced


class ChatArea:
    """Binds a scroll container and the list inside it (the aria-live region) to a Chat.

    Copy buttons are handled here; Edit calls `on_edit(index)`, Regenerate `on_regenerate()`,
    Continue `on_continue()`,
    the version switcher `on_switch(index, -1 or 1)`, a tool call's choices `on_call(call id,
    "allow" | "always" | "deny")`.
    """

    def __init__(
        self,
        scroller: Any,
        messages: Any,
        on_edit: Callable[[int], None],
        on_regenerate: Callable[[], None],
        spawn: Spawn,
        on_switch: Callable[[int, int], None] | None = None,
        on_call: Callable[[str, str], None] | None = None,
        on_continue: Callable[[], None] | None = None,
        urls: BlobUrls | None = None,
        on_view: Callable[[str, str], None] = lambda _url, _name: None,
        jump: Any = None,
    ) -> None:
        """`urls`: the images' Blob URLs; `on_view(url, name)`: show an image full size; `jump`: the
        "Jump to bottom" button (see `jump_shown`)."""
        self._scroller = scroller
        self._messages = messages
        self._on_edit, self._on_regenerate, self._spawn = on_edit, on_regenerate, spawn
        self._on_switch = on_switch
        self._on_call = on_call
        self._on_continue = on_continue
        self._urls = urls if urls is not None else BlobUrls(lambda _digest: None)
        self._on_view = on_view
        self._rows: list[tuple[Any, Any, Any, Any, Any]] = []  # (row, column, bubble, note, actions)
        self._shown: list[BubbleView | None] = []
        self._streams: dict[int, tuple[Any, markdown.StreamRender, int]] = {}  # index: (bubble, renderer, tail size)
        self._thoughts: dict[int, tuple[Any, Any, Any]] = {}  # index: (details, summary, text), made on first need
        self._chat = Chat()
        self._views: list[BubbleView] = []  # what each row is to show, as of the last render
        self._later: list[int] = []  # rows left to render, ascending: the job takes the newest first
        self._hidden: set[int] = set()  # rows hidden until their turn comes (they show another chat)
        self._keep_bottom = False  # rows come in above the view: keep its distance from the bottom
        self._filling: asyncio.Task[None] | None = None
        self._runner = CodeRunner(spawn, lambda: chat_files(self._chat.turns))
        self._proxy = listen(messages, "click", self._click)
        self._jump = jump
        self._unseen = False  # text came below while the reader was scrolled up
        if jump is not None:
            self._jump_proxies = [listen(scroller, "scroll", self._scrolled), listen(jump, "click", self._jump_down)]

    def _scrolled(self, _event: Any) -> None:
        near = self._near_bottom()
        if near:
            self._unseen = False
        self._show_jump(near)

    def _jump_down(self, _event: Any) -> None:
        """To the newest text, and follow it from there on (render follows while near the bottom)."""
        self._unseen = False
        self._scroller.scrollTop = self._scroller.scrollHeight
        self._show_jump(True)

    def _show_jump(self, near_bottom: bool) -> None:
        if self._jump is None:
            return
        hidden = not jump_shown(near_bottom, self._chat.busy, self._unseen)
        if bool(self._jump.hidden) != hidden:  # a scroll event each frame: touch the DOM only on a change
            self._jump.hidden = hidden

    def _click(self, event: Any) -> None:
        button = event.target.closest("button[data-action]")
        if not button:  # JS null (jsnull in Pyodide 314, not None) when the click missed a button
            return
        action = str(button.dataset.action)
        if self._runner.click(button):
            return
        if action == "copy-code":
            self._spawn(copy_text(button, str(button.closest(".code-block").querySelector("code").textContent)))
            return
        if action == "show-all":
            self._unfold(button, button.getAttribute("aria-expanded") != "true")
            return
        if action == "view-image":
            self._on_view(str(button.dataset.url), str(button.dataset.name))
            return
        if action.endswith("-call") and self._on_call is not None:
            self._on_call(str(button.dataset.call), action.removesuffix("-call"))
            return
        index = int(button.closest("li[data-index]").dataset.index)
        if action == "copy":
            self._spawn(copy_text(button, self._chat.turns[index].text))
        elif action == "regenerate":
            self._on_regenerate()
        elif action == "continue" and self._on_continue is not None:
            self._on_continue()
        elif action == "edit":
            self._on_edit(index)
        elif action in ("prev-version", "next-version") and self._on_switch is not None:
            self._on_switch(index, -1 if action == "prev-version" else 1)

    def render(self, chat: Chat, rich: bool, image_state: Callable[[str], str] = lambda _digest: "") -> None:
        switched = chat.id != self._chat.id
        self._chat = chat
        near_bottom = self._near_bottom()
        grew = len(chat.turns) > len(self._rows)
        left_out = dropped(chat)
        self._views = [
            view_of(
                turn, last=index == len(chat.turns) - 1, busy=chat.busy, rich=rich,
                versions=versions_at(chat, index), dropped=index in left_out, image_state=image_state,
            )
            for index, turn in enumerate(chat.turns)
        ]
        while len(self._rows) < len(chat.turns):
            self._rows.append(self._new_row())
            self._shown.append(None)
        while len(self._rows) > len(chat.turns):
            self._rows.pop()[0].remove()
            self._shown.pop()
            self._thoughts.pop(len(self._rows), None)
            self._hidden.discard(len(self._rows))
        waiting = set() if switched else set(self._later)  # the job renders those with their latest view
        shown, hidden = self._shown, self._hidden
        changed = [i for i, view in enumerate(self._views) if i not in waiting and (shown[i] != view or i in hidden)]
        now, later = render_order.split(changed, len(chat.turns), switched)
        if later and switched:  # another chat, long: of its last rows, those that fill the view
            for index in later + now:
                self._rows[index][0].hidden = True  # another chat's message until its turn comes
                self._hidden.add(index)
            later += now[: len(now) - self._fill_view(now)]
            self._keep_bottom = True
        elif later:  # a big change in this chat: its end, and the rows the reader is looking at
            seen = set(now).union(self._on_screen(later))
            now, later = sorted(seen), [index for index in later if index not in seen]
            for index in now:
                self._show_row(index)
            self._keep_bottom = False
        else:
            for index in now:
                self._show_row(index)
        self._later = sorted(waiting.intersection(range(len(chat.turns))).union(later))
        if self._later and (self._filling is None or self._filling.done()):
            self._filling = self._spawn(self._fill())
        # Follow the newest text unless the reader scrolled up to read older messages;
        # a newly sent message, or another chat, always brings the view down.
        follow = bool(now or switched) and (grew or near_bottom or switched)
        if follow:
            self._scroller.scrollTop = self._scroller.scrollHeight
        elif changed:
            self._unseen = True
        self._show_jump(follow or near_bottom)  # measured before the change: no second layout per token

    def _show_row(self, index: int) -> None:
        view = self._views[index]
        if self._shown[index] != view:
            self._update(self._rows[index], view, self._shown[index], index)
            self._shown[index] = view
        if index in self._hidden:
            self._rows[index][0].hidden = False
            self._hidden.discard(index)

    def _fill_view(self, rows: list[int]) -> int:
        """Show `rows` from the last up until they fill the view; how many were shown."""
        height = render_order.SCREENS * float(self._scroller.clientHeight)
        shown = 0
        for index in reversed(rows):
            if height <= 0:
                break
            self._show_row(index)
            height -= float(self._rows[index][0].offsetHeight)
            shown += 1
        return shown

    def _on_screen(self, rows: list[int]) -> list[int]:
        """Those of `rows` that are in the view now."""
        view = self._scroller.getBoundingClientRect()
        seen = []
        for index in rows:
            box = self._rows[index][0].getBoundingClientRect()
            if box.bottom > view.top and box.top < view.bottom:
                seen.append(index)
        return seen

    async def _fill(self) -> None:
        """Render the rows left for later, newest first, a short browser task at a time. After
        another chat opened they all come in above the view, which keeps its distance from the
        bottom; otherwise the browser's scroll anchoring keeps what the reader sees in place."""
        while self._later:
            await asyncio.sleep(0)
            from_bottom = self._scroller.scrollHeight - self._scroller.scrollTop
            since = time.perf_counter()
            while self._later and time.perf_counter() - since < render_order.SLICE_S:
                self._show_row(self._later.pop())
            if self._keep_bottom:
                self._scroller.scrollTop = self._scroller.scrollHeight - from_bottom

    def _show_markdown(self, document: Any, bubble: Any, view: BubbleView, old: BubbleView | None, index: int) -> None:
        """A streaming answer keeps its finished blocks and rebuilds only the open one at the end
        (client.markdown.StreamRender); any other answer is rendered whole, once."""
        held = self._streams.pop(index, None)
        if old is None or not (old.markdown and old.status == "streaming"):
            held = None  # the bubble shows something else: start over
        if view.status != "streaming":
            bubble.replaceChildren()
            build(document, bubble, markdown.render(view.text))
            return
        if held is None or held[0] is not bubble:
            held = (bubble, markdown.StreamRender(), 0)
        _, stream, tail = held
        update = stream.update(view.text)
        if update.reset:
            bubble.replaceChildren()
        else:
            for _ in range(tail):
                bubble.lastChild.remove()
        build(document, bubble, update.kept)
        before = bubble.childNodes.length
        build(document, bubble, update.tail)
        self._streams[index] = (bubble, stream, bubble.childNodes.length - before)

    def _show_thoughts(
        self, document: Any, column: Any, bubble: Any, view: BubbleView, old: BubbleView | None, index: int
    ) -> None:
        """The folded thoughts above the bubble: made once, then only their text grows and the
        summary changes, so the block stays open or closed as the reader left it."""
        if index not in self._thoughts:
            details = document.createElement("details")
            details.className = THOUGHTS
            details.dataset.part = "thoughts"
            summary = document.createElement("summary")
            summary.className = THOUGHTS_SUMMARY
            text = document.createElement("div")
            text.className = THOUGHTS_TEXT
            details.append(summary, text)
            column.insertBefore(details, bubble)
            self._thoughts[index] = (details, summary, text)
        details, summary, text = self._thoughts[index]
        details.hidden = not view.thoughts
        summary.textContent = THINKING if view.thinking else THOUGHTS_LABEL
        before = old.thoughts if old is not None else ""
        if before and view.thoughts.startswith(before) and text.firstChild:
            if len(view.thoughts) > len(before):
                text.firstChild.appendData(view.thoughts[len(before) :])  # a streamed piece: no copy of the rest
        elif view.thoughts != before or old is None:
            details.open = False  # another answer's thoughts in this row: folded, like any new ones
            text.textContent = view.thoughts

    @staticmethod
    def _show_files(document: Any, column: Any, names: tuple[str, ...]) -> None:
        """The chips of a message's files, above its bubble (made on first need: most messages have none)."""
        files = column.querySelector(":scope > [data-part=files]")
        if not files:  # JS null when there is none yet
            if not names:
                return
            files = document.createElement("ul")
            files.className = FILES
            files.dataset.part = "files"
            files.setAttribute("aria-label", LIST_LABEL)
            column.prepend(files)
        files.replaceChildren(*(chip_item(document, name)[0] for name in names))
        files.hidden = not names

    def _show_images(self, document: Any, column: Any, bubble: Any, images: tuple[tuple[ImageRef, str], ...]) -> None:
        """A message's images above its bubble: each a thumbnail that opens it full size, or its
        name while the page has not got its bytes (saying so where it never will)."""
        shown = column.querySelector(":scope > [data-part=images]")
        if not shown:  # JS null when there is none yet
            if not images:
                return
            shown = document.createElement("ul")
            shown.className = FILES
            shown.dataset.part = "images"
            shown.setAttribute("aria-label", IMAGES_LABEL)
            column.insertBefore(shown, bubble)
        items = []
        for image, state in images:
            url = self._urls.url(image.digest) if state == HELD else ""
            if not url:
                items.append(chip_item(document, lost(image.name) if state == LOST else image.name)[0])
                continue
            item = document.createElement("li")
            button = document.createElement("button")
            button.type = "button"
            button.className = IMAGE_BUTTON
            button.dataset.action = "view-image"
            button.dataset.url = url
            button.dataset.name = image.name
            button.setAttribute("aria-label", open_label(image.name))
            button.append(thumbnail(document, url, THUMB))
            item.append(button)
            items.append(item)
        shown.replaceChildren(*items)
        shown.hidden = not images

    @staticmethod
    def _fold(document: Any, column: Any, bubble: Any, long: bool, index: int, fresh: bool) -> None:
        """Fold a long message under its "Show all" toggle (made on first need), as the reader left
        it; `fresh`: the row shows another text now, folded like any new one."""
        toggle = column.querySelector(":scope > [data-part=show-all]")
        if not toggle:  # JS null when there is none yet
            if not long:
                return
            toggle = document.createElement("button")
            toggle.type = "button"
            toggle.className = FOLD_TOGGLE
            toggle.dataset.part = toggle.dataset.action = "show-all"
            toggle.setAttribute("aria-expanded", "false")
            toggle.textContent = SHOW_ALL
            bubble.after(toggle)
        if fresh:
            toggle.setAttribute("aria-expanded", "false")
            toggle.textContent = SHOW_ALL
        bubble.id = f"message-{index}"
        toggle.setAttribute("aria-controls", bubble.id)
        toggle.hidden = not long
        if long and toggle.getAttribute("aria-expanded") != "true":
            bubble.classList.add(*FOLDED.split())

    @staticmethod
    def _unfold(toggle: Any, open_: bool) -> None:
        bubble = toggle.parentElement.querySelector(":scope > [data-part=bubble]")
        toggle.setAttribute("aria-expanded", "true" if open_ else "false")
        toggle.textContent = SHOW_LESS if open_ else SHOW_ALL
        for name in FOLDED.split():
            bubble.classList.toggle(name, not open_)

    def _near_bottom(self) -> bool:
        s = self._scroller
        return bool(s.scrollHeight - s.scrollTop - s.clientHeight < 80)

    def _new_row(self) -> tuple[Any, Any, Any, Any, Any]:
        from js import document

        row = document.createElement("li")
        column = document.createElement("div")
        bubble = document.createElement("div")
        bubble.dataset.part = "bubble"  # the message itself (tests and styles find it by this)
        note = document.createElement("div")
        note.dataset.part = "note"
        actions = document.createElement("div")
        actions.className = ACTIONS
        column.append(bubble, note, actions)
        row.append(column)
        self._messages.append(row)
        return row, column, bubble, note, actions

    @staticmethod
    def _show_reading(document: Any, bubble: Any, reading: tuple[int, int]) -> None:
        bar = document.createElement("progress")
        bar.dataset.part = "reading"
        bar.className = READING_BAR
        bar.max, bar.value = reading[1], reading[0]
        bar.setAttribute("aria-label", "Prompt read")
        bubble.append(bar)

    def _update(
        self, parts: tuple[Any, Any, Any, Any, Any], view: BubbleView, old: BubbleView | None, index: int
    ) -> None:
        from js import document

        row, column, bubble, note, actions = parts
        row.className = f"{ROW} {view.row_class}"
        row.dataset.role = view.role
        row.dataset.status = view.status
        row.dataset.dropped = "true" if view.dropped else "false"
        row.dataset.index = str(index)
        column.className = view.column_class
        bubble.className = view.bubble_class
        self._fold(document, column, bubble, view.long, index, old is None or old.text != view.text)
        if (old.files if old else ()) != view.files:
            self._show_files(document, column, view.files)
        if (old.images if old else ()) != view.images:
            self._show_images(document, column, bubble, view.images)
        if old is None or (old.text, old.markdown) != (view.text, view.markdown):
            if view.markdown:
                self._show_markdown(document, bubble, view, old, index)
                bubble.dataset.markdown = "true"
            else:
                bubble.textContent = view.text
                bubble.dataset.markdown = "false"
            if view.reading:
                self._show_reading(document, bubble, view.reading)
        if old is None or (old.rounds, old.rich) != (view.rounds, view.rich):
            nodes = tool_calls.round_nodes(view.rounds, view.rich)
            tool_calls.show(document, column, bubble, nodes, "rounds", before=True)
        if old is None or old.calls != view.calls:
            tool_calls.show(document, column, bubble, tool_calls.call_nodes(view.calls), "calls", before=False)
        # A message of files only: their chips say it all; an answer that only thinks (or calls) so far: that alone.
        bubble.hidden = not view.text and bool(view.files or view.images or view.thoughts or view.calls)
        if view.thoughts or index in self._thoughts:
            self._show_thoughts(document, column, bubble, view, old, index)
        note.className = NOTE
        note.textContent = view.note
        note.hidden = not view.note
        if old is None or (old.actions, old.written) != (view.actions, view.written):
            actions.replaceChildren()
            for action, label, name in view.actions:
                if action == "version":
                    count = document.createElement("span")
                    count.className = "px-1 py-1 text-gray-600 tabular-nums dark:text-gray-300"
                    count.dataset.part = "version"
                    count.textContent = label
                    actions.append(count)
                    continue
                button = document.createElement("button")
                button.disabled = action.endswith("-off")
                button.type = "button"
                button.className = SWITCH if action.endswith("-version") or action.endswith("-version-off") else ACTION
                button.dataset.action = action
                button.textContent = label
                if name != label:
                    button.setAttribute("aria-label", name)
                actions.append(button)
            if view.written:
                actions.append(self._stamp(document, view.written))
            actions.hidden = not (view.actions or view.written)

    @staticmethod
    def _stamp(document: Any, written: float) -> Any:
        stamp = document.createElement("time")
        stamp.className = STAMP
        stamp.dataset.part = "time"
        stamp.dateTime = iso_time(written)
        stamp.textContent = local_time(written)
        return stamp
