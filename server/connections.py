"""Connections: a client that opens sockets and says nothing cannot hold the server's.

uvicorn times out the wait between two requests (keep-alive), but not the wait for a request's
headers, and it accepts connections until the process runs out of file descriptors. The protocol
here is uvicorn's own h11 one plus what it lacks:
- a deadline for a request's headers, from the moment the connection waits for them, kept by one
  timer for the whole pool; connections past it are closed a batch per turn of the event loop, so
  that a flood reaching its deadline together (it arrives together) is not closed all in one turn
  while every other request waits;
- a deadline for a stalled write: a client that stops reading (its buffers full) is cut off, not
  waited on for as long as it likes, holding its request and connection;
- a cap on connections in all and per client address. Over a cap, a new connection first evicts
  the oldest one still waiting for its headers, so an idle flood cannot lock real clients out;
  only when none is idle is the new one closed;
- the caps fit the file descriptors the process may open, raised to their hard limit at start.

Accept errors (out of descriptors all the same, say because the model holds many) are logged
once per interval with a count, never a traceback per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections import Counter
from typing import Any, NamedTuple

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("snake_llama")

# Descriptors kept for everything that is not a client: the model's files, llama.cpp's listener,
# logs, the page's assets being read.
RESERVED_FDS = 128
ACCEPT_LOG_EVERY_S = 10.0
# Connections closed per turn of the event loop once past their header deadline: each close costs
# tens of microseconds, so a batch this size keeps a turn to a few milliseconds.
CLOSE_BATCH = 64


class Limits(NamedTuple):
    header_timeout_s: float
    max_connections: int
    max_per_client: int
    send_timeout_s: float = 30.0


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def fitted(limits: Limits, fd_limit: int) -> Limits:
    """`limits` with the connection caps lowered to fit `fd_limit` open files."""
    room = max(1, fd_limit - RESERVED_FDS)
    return limits._replace(max_connections=min(limits.max_connections, room),
                           max_per_client=min(limits.max_per_client, room))


class Pool:
    """The connections of one server: how many per client, and which wait for headers (oldest first)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open: set[Guarded] = set()
        self.per_client: Counter[str] = Counter()
        # when each connection's headers are due; insertion-ordered, and every wait is as long, so
        # the first one is always the first due
        self.waiting: dict[Guarded, float] = {}
        self.sweep: asyncio.TimerHandle | None = None

    def admit(self, conn: Guarded) -> bool:
        """Count `conn` in, evicting idle ones to make room; False if no room could be made."""
        host = conn.host
        if self.per_client[host] >= self.limits.max_per_client and not self._evict(host):
            return False
        if len(self.open) >= self.limits.max_connections and not self._evict(None):
            return False
        self.open.add(conn)
        self.per_client[host] += 1
        return True

    def leave(self, conn: Guarded) -> None:
        self.waiting.pop(conn, None)
        if conn in self.open:
            self.open.discard(conn)
            self.per_client[conn.host] -= 1
            if not self.per_client[conn.host]:
                del self.per_client[conn.host]

    def wait(self, conn: Guarded) -> None:
        """Start `conn`'s wait for a request's headers: it is closed if they are not in by the deadline."""
        self.waiting.pop(conn, None)  # to the end: the last due
        self.waiting[conn] = conn.loop.time() + self.limits.header_timeout_s
        if self.sweep is None:
            self.sweep = conn.loop.call_at(self.waiting[conn], self._close_late, conn.loop)

    def _close_late(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close up to CLOSE_BATCH connections past their deadline; come back for the rest on the
        loop's next turn (after it has served what else is ready), or at the next deadline."""
        self.sweep = None
        now = loop.time()
        for _ in range(CLOSE_BATCH):
            conn, due = next(iter(self.waiting.items()), (None, 0.0))
            if conn is None or due > now:
                break
            del self.waiting[conn]
            conn.close()  # it leaves the counts when it is gone: its file is open until then
        if self.waiting:
            self.sweep = loop.call_at(max(next(iter(self.waiting.values())), now), self._close_late, loop)

    def _evict(self, host: str | None) -> bool:
        """Close the oldest connection waiting for headers (of `host`, if given)."""
        oldest = next((c for c in self.waiting if host is None or c.host == host), None)
        if oldest is None:
            return False
        self.leave(oldest)
        oldest.close()
        return True


class Guarded(H11Protocol):
    """uvicorn's h11 protocol with a headers deadline and the pool's caps (see the module)."""

    pool: Pool  # set on the subclass `protocol` makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.host = self.client[0] if self.client else ""
        self.stalled: asyncio.TimerHandle | None = None
        if not self.pool.admit(self):
            self.close()
            return
        self.pool.wait(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._unstall()
        self.pool.leave(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        scope = self.scope
        super().handle_events()
        if self.scope is not scope:  # a request's headers are in
            self.pool.waiting.pop(self, None)

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self.pool.wait(self)  # before uvicorn reads a pipelined request, which ends the wait
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stalled is None:
            # abort, not close: a close would wait for the unsent bytes the client never reads
            self.stalled = self.loop.call_later(self.pool.limits.send_timeout_s, self.transport.abort)

    def resume_writing(self) -> None:
        self._unstall()
        super().resume_writing()

    def _unstall(self) -> None:
        if self.stalled is not None:
            self.stalled.cancel()
            self.stalled = None

    def close(self) -> None:
        if not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def protocol(limits: Limits) -> type[Guarded]:
    """A protocol class for uvicorn (its `http`), with one pool for all of a server's connections."""
    return type("GuardedH11", (Guarded,), {"pool": Pool(limits)})


class AcceptErrors:
    """A loop exception handler that turns accept failures into one line per interval with a count,
    and leaves every other exception to the loop's default handler."""

    def __init__(self, every_s: float = ACCEPT_LOG_EVERY_S) -> None:
        self.every_s = every_s
        self.missed = 0
        self.last_logged = -float("inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            loop.default_exception_handler(context)
            return
        self.missed += 1
        now = time.monotonic()
        if now - self.last_logged >= self.every_s:
            log.warning("could not accept %d connection(s) in the last %.0f s: %s", self.missed, self.every_s,
                        context.get("exception") or "out of system resources")
            self.missed = 0
            self.last_logged = now
