"""Boot: the named phases of page start-up, and the rule for a message typed before Python ran.

Phases. Each phase ends with a `performance.mark` named here (bench/page.py reads them with
`performance.getEntriesByType("mark")`), and the status line then names what comes next.
Before any Python runs the page can only show static HTML, so the first label, PyScript
fetching Pyodide, starting it and installing the `packages` of index.html's config (Pyodide
installs them while the interpreter boots), lives in index.html; tests check it matches
`STARTING`. (PyScript's `py:progress` events say more, but only a script of our own could hear
them before Python runs; the bench listens to them instead.) The first line of our Python runs
with the packages already installed, so `snake:packages-installed` follows
`snake:interpreter-ready` at once.

Echo first. Pyodide's own start (instantiating the interpreter, CPython's start-up and
Pyodide's Python side, installing the wheels) is one synchronous task of about 0.5 s on an idle
machine and several times that on a busy one; no page code runs inside it or can split it, and
a keystroke then waits for it to end (bench/page.py's bare Pyodide page has the same task).
So the message box and Send are disabled in the HTML, and `open_box` enables them at the first
line of our Python, the first moment a keystroke is echoed at once; from there on every step of
start-up is short (`import_sliced`, main.py yields between steps), so the box never stalls.

Type-ahead. Between `open_box` and the app binding the box (main.py), the box is a plain
<textarea>, so Enter just types a newline and nothing can send. When the app takes over it
reads what happened (`take`):
- a box whose text ends in a newline was sent with Enter: that final newline is Enter's, so
  the rest is the message (Shift+Enter newlines before it are part of the text). Pressing
  Enter and Shift+Enter type the same newline before the app binds, so a final newline always
  means "sent": the rule has no other way to know;
- the Send button, until then, is `type=button` with `popovertarget`: HTML alone opens the
  "goes out when ready" popover on a click (no form submission, no reload), and an open
  popover means Send was pressed.
The app then sends the message (main.py), so it goes out exactly once; a reload does not send it
again, because the box is then empty (and `autocomplete=off` keeps the browser from restoring,
on Back or reload, an old draft that happens to end in a newline).
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Marks, in the order they are made.
INTERPRETER_READY = "snake:interpreter-ready"  # the first line of our Python runs
PACKAGES_INSTALLED = "snake:packages-installed"  # index.html's wheels are importable
MODULES_IMPORTED = "snake:modules-imported"  # the client modules the first screen needs
FIRST_RENDER = "snake:first-render"  # the chat UI has rendered the saved chats once
READY = "snake:ready"  # the page takes a message: Send enabled, body[data-ready=true]
MARKS = (INTERPRETER_READY, PACKAGES_INSTALLED, MODULES_IMPORTED, FIRST_RENDER, READY)

# What the status line says while each phase runs: before any Python (index.html), and
# after each mark. Python and the packages are in place by the first mark, so only our own
# phases remain to name.
STARTING = "Downloading and starting Python…"
LABELS = {
    INTERPRETER_READY: "Loading the app…",
    PACKAGES_INSTALLED: "Loading the app…",
    MODULES_IMPORTED: "Opening your chats…",
    FIRST_RENDER: "Opening your chats…",
    READY: "Ready.",
}
PHASES = (STARTING, *dict.fromkeys(LABELS.values()))  # as the user sees them, in order

# The page's elements this module reads or writes (index.html).
STATUS_ID = "boot-status"  # the status line (role=status)
LOADING_ID = "loading"  # the spinner and progress bar around it
BOX_ID = "prompt"  # the message box
PENDING_ID = "typed-ahead"  # the popover that says a message goes out when ready
SEND_ID = "send"

# The longest stretch of start-up work between two yields to the browser: a keystroke that comes
# meanwhile waits at most this long (plus a frame) to be echoed.
SLICE_S = 0.025
# Work that can wait (the Markdown renderer: client.markdown.load) waits for this long a pause in
# typing before each of its steps, so a typist is not held up even by a step that cannot be split.
QUIET_S = 0.5


@dataclass(frozen=True)
class TypeAhead:
    """What Python finds on taking over the message box: a message to send, and what the box keeps."""

    message: str | None
    box: str


def take(box: str, clicked: bool) -> TypeAhead:
    """Apply the type-ahead rule to the box's text; `clicked`: Send was pressed before the app bound the box."""
    entered = box.endswith("\n")
    text = box[:-1] if entered else box
    if not (entered or clicked):
        return TypeAhead(None, box)  # a draft: left as it is
    if not text.strip():
        return TypeAhead(None, text)  # sent blank: nothing to send, as after boot
    return TypeAhead(text, "")


async def import_sliced(names: Iterable[str], budget_s: float = SLICE_S) -> None:
    """Import `names` in order, yielding to the browser whenever `budget_s` has been spent.

    Named leaves first, each step stays small: a module's imports that are not in yet come in
    its own step. `asyncio.sleep(0)` is a browser task in Pyodide's loop (setTimeout), so input
    and paint go between steps.
    """
    since = time.perf_counter()
    for name in names:
        importlib.import_module(name)
        if time.perf_counter() - since >= budget_s:
            await asyncio.sleep(0)
            since = time.perf_counter()


Clock = Callable[[], float]


class Typing:
    """When a key was last pressed on the page (`pressed`), and a wait for a pause in typing."""

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self.clock = clock
        self.last = -math.inf

    def pressed(self, _event: object = None) -> None:
        self.last = self.clock()

    async def pause(self, quiet_s: float = QUIET_S) -> None:
        """Return (in a later browser task) once no key has been pressed for `quiet_s`."""
        await asyncio.sleep(0)
        while (left := self.last + quiet_s - self.clock()) > 0:
            await asyncio.sleep(left)


# Browser only below: `js` is imported inside the functions, so this module imports on CPython.


def reach(mark: str) -> None:
    """Record `mark` for the bench and name the next phase on the status line."""
    from js import document, performance

    performance.mark(mark)
    status = document.getElementById(STATUS_ID)
    if status:  # JS null (jsnull in Pyodide 314, not None) once the page dropped it
        status.textContent = LABELS[mark]
        if mark == READY:
            # The spinner goes; the status line stays for screen readers, which hear "Ready.".
            loading = document.getElementById(LOADING_ID)
            loading.replaceChildren(status)
            loading.className = "sr-only"


class _Pending:
    """The "goes out when ready" popover; in a browser without popovers, one never open."""

    def __init__(self) -> None:
        from js import document

        self.element = document.getElementById(PENDING_ID)
        self.supported = hasattr(self.element, "showPopover")

    def is_open(self) -> bool:
        return self.supported and bool(self.element.matches(":popover-open"))

    def hide(self) -> None:
        if self.is_open():
            self.element.hidePopover()


def open_box() -> None:
    """Our Python runs, so a keystroke is echoed at once from now on: let the user type.

    The box takes the focus unless the user already put it somewhere (a click on the sidebar...).
    """
    from js import document

    box = document.getElementById(BOX_ID)
    box.disabled = False
    document.getElementById(SEND_ID).disabled = False
    active = document.activeElement
    if not active or active == document.body:
        box.focus()


def watch_typing(typing: Typing) -> object:
    """Tell `typing` of every key pressed on the page; returns the listener, to keep referenced."""
    from js import document
    from pyodide.ffi import create_proxy

    proxy = create_proxy(typing.pressed)
    document.addEventListener("keydown", proxy, True)
    return proxy


def take_over() -> str | None:
    """The app now handles the box: the message sent since `open_box`, if any.

    From here the box's own listeners send, so the Send button stops opening the popover.
    """
    from js import document

    box = document.getElementById(BOX_ID)
    pending = _Pending()
    found = take(str(box.value), clicked=pending.is_open())
    pending.hide()
    document.getElementById(SEND_ID).removeAttribute("popovertarget")
    box.value = found.box
    return found.message
