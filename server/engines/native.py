"""What native code prints while it loads a model, so a failure can quote the loader's words."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def capture_native_output() -> Iterator[list[str]]:
    """Collect what native code prints on fd 1 and 2 while the block runs (the text is also
    passed on to stderr afterwards, so nothing is lost)."""
    out: list[str] = []
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        libc.fflush(None)
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            out.append(text)
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()
