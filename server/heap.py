"""The Python heap: what lives for the whole run is kept out of the cyclic collector's passes.

Once the model is up, the heap holds well over 100,000 objects that stay for the whole run:
modules, the app, the engine, templates. A full pass of the cyclic garbage collector walks every
one of them, on the event loop's thread, and costs tens of milliseconds on a small CPU: a stall of
every request then in flight, /health included. Frozen, they are skipped; what requests make is
still collected as before.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect what startup left behind, then freeze everything still alive; how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
