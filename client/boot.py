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

Type-ahead. The message box is a plain, enabled <textarea> from first paint, and the page has
no JavaScript of its own, so before Python runs Enter just types a newline and nothing can
send. When Python takes over it reads what happened (`take`):
- a box whose text ends in a newline was sent with Enter: that final newline is Enter's, so
  the rest is the message (Shift+Enter newlines before it are part of the text). Pressing
  Enter and Shift+Enter type the same newline before Python runs, so a final newline always
  means "sent": the rule has no other way to know;
- the Send button, before Python runs, is `type=button` with `popovertarget`: HTML alone opens
  the "goes out when ready" popover on a click (no form submission, no reload), and an open
  popover means Send was pressed.
Python takes the message out of the box and shows it as pending at once (`capture`), then the
app sends it when it can (main.py), so it goes out exactly once; a reload does not send it
again, because the box is then empty (and `autocomplete=off` keeps the browser from restoring,
on Back or reload, an old draft that happens to end in a newline).
"""

from __future__ import annotations

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
PENDING_TEXT_ID = "typed-ahead-text"


@dataclass(frozen=True)
class TypeAhead:
    """What Python finds on taking over the message box: a message to send, and what the box keeps."""

    message: str | None
    box: str


def take(box: str, clicked: bool) -> TypeAhead:
    """Apply the type-ahead rule to the box's text; `clicked`: Send was pressed before Python ran."""
    entered = box.endswith("\n")
    text = box[:-1] if entered else box
    if not (entered or clicked):
        return TypeAhead(None, box)  # a draft: left as it is
    if not text.strip():
        return TypeAhead(None, text)  # sent blank: nothing to send, as after boot
    return TypeAhead(text, "")


def pending_note(message: str) -> str:
    """What the popover says while `message` waits for the app."""
    return f"Sends when the app is ready: “{message}”"


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

    def show(self, message: str) -> None:
        from js import document

        document.getElementById(PENDING_TEXT_ID).textContent = pending_note(message)
        if self.supported and not self.is_open():
            self.element.showPopover()

    def hide(self) -> None:
        if self.is_open():
            self.element.hidePopover()


def capture() -> str | None:
    """Take a message sent before Python ran out of the box, and show it as pending."""
    from js import document

    box = document.getElementById(BOX_ID)
    pending = _Pending()
    found = take(str(box.value), clicked=pending.is_open())
    box.value = found.box
    if found.message is None:
        pending.hide()  # Send was pressed on a blank box, or not at all
        return None
    pending.show(found.message)
    return found.message


def take_over(captured: bool) -> str | None:
    """The app now handles the box: one last look for a message sent since `capture`.

    From here the box's own listeners send, so the Send button stops opening the popover.
    With a message already `captured` (and so about to stream), a second one sent meanwhile
    stays in the box, as Enter does while an answer streams.
    """
    from js import document

    box = document.getElementById(BOX_ID)
    pending = _Pending()
    found = take(str(box.value), clicked=not captured and pending.is_open())
    pending.hide()
    document.getElementById("send").removeAttribute("popovertarget")
    if captured and found.message is not None:
        box.value = found.message
        return None
    box.value = found.box
    return found.message
