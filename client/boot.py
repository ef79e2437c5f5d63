"""Boot: the named phases of page start-up, marked for the bench and named on the status line.

Phases. Each phase ends with a `performance.mark` named here (bench/page.py reads them with
`performance.getEntriesByType("mark")`), and the status line then names what comes next.
Before any Python runs the page can only show static HTML, so the first label, PyScript
fetching Pyodide, starting it and installing the `packages` of index.html's config (Pyodide
installs them while the interpreter boots), lives in index.html; tests check it matches
`STARTING`. The first line of our Python runs with the packages already installed, so
`snake:packages-installed` follows `snake:interpreter-ready` at once.
"""

from __future__ import annotations

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

