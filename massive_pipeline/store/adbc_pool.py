"""A few open ADBC connections per PostgreSQL store, reused from read to read by the whole process.

Opening an ADBC connection costs about 25 ms (the driver reads the server's type catalog), more
than reading a day of minute bars through it (about 1 ms), and `CandleStore.read` runs for every
partition an asset or a check loads, `read_candles` for every call of a notebook loop. So the
connections a read opened are kept, up to `keep` idle ones per store URL, and shared by every
`CandleStore` and reader of that URL in the process (`shared`). Only the few most recently used
URLs keep connections: a process that talks to many databases (the test suite makes one per
test) holds a bounded number of sockets.

A kept connection may have died meanwhile (server restart, idle timeout, a dropped database):
when its first use fails with a connection-level error, it and every other idle one of its URL
are dropped and the work runs once more on a fresh connection (the work is a read or the start
of one, so running it again is safe). A connection is used by one thread at a time, and a
forked child never touches connections its parent opened (closing them would end the parent's
sessions).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from adbc_driver_manager import OperationalError

T = TypeVar("T")
KEPT_URLS = 4
# Connections a forked child inherited: kept referenced so that they are never closed from the child.
_INHERITED: list[Any] = []


def _close_all(connections: list[Any]) -> None:
    while connections:
        connections.pop().close()


def _close_owned(connections: list[Any], owner: int) -> None:
    """`_close_all`, but only in the process that opened them (a forked child may collect the pool too)."""
    if os.getpid() == owner:
        _close_all(connections)


class AdbcPool:
    """Idle ADBC connections made by `connect`, at most `keep` of them."""

    def __init__(self, connect: Callable[[], Any], *, keep: int = 4) -> None:
        self._connect, self._keep = connect, keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._retired = False
        # Closes what is idle when the pool is collected, so no session outlives its pool.
        weakref.finalize(self, _close_owned, self._idle, self._pid)

    def _take(self) -> Any | None:
        with self._lock:
            if self._pid != os.getpid():
                _INHERITED.extend(self._idle)
                self._idle.clear()
                self._pid = os.getpid()
            return self._idle.pop() if self._idle else None

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            if not self._retired and self._pid == os.getpid() and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def _first_use(self, work: Callable[[Any], T]) -> tuple[Any, T]:
        """A connection and `work`'s result on it: a kept one if it still works, else a fresh one."""
        conn = self._take()
        if conn is not None:
            try:
                return conn, work(conn)
            except OperationalError:
                conn.close()
                self.dispose()  # connections idle as long as that one may be dead too
            except BaseException:
                conn.close()
                raise
        conn = self._connect()
        try:
            return conn, work(conn)
        except BaseException:
            conn.close()
            raise

    def run(self, work: Callable[[Any], T]) -> T:
        """`work(connection)`, on a kept connection when one works; the connection is kept for the next read."""
        conn, result = self._first_use(work)
        self._give_back(conn)
        return result

    @contextmanager
    def session(self, begin: Callable[[Any], object]) -> Iterator[Any]:
        """A connection for the block, `begin(connection)` its first use; kept afterwards unless the block failed."""
        conn, _ = self._first_use(begin)
        try:
            yield conn
        except BaseException:
            conn.close()  # it may be inside a transaction or a half-read result: never reuse it
            raise
        self._give_back(conn)

    def dispose(self, *, retire: bool = False) -> None:
        """Close every idle connection (those in use close or come back when their read ends).

        `retire`: the pool is no longer shared; connections coming back are closed, not kept.
        """
        with self._lock:
            self._retired = self._retired or retire
            if self._pid != os.getpid():
                return
            idle = list(self._idle)
            self._idle.clear()
        _close_all(idle)


_SHARED: OrderedDict[str, AdbcPool] = OrderedDict()
_SHARED_LOCK = threading.Lock()


def shared(key: str, connect: Callable[[], Any]) -> AdbcPool:
    """The process's pool for the store `key` names, made with `connect` the first time.

    The least recently used of more than `KEPT_URLS` pools is retired (its idle connections closed).
    """
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = AdbcPool(connect)
        _SHARED.move_to_end(key)
        evicted = [_SHARED.popitem(last=False)[1] for _ in range(len(_SHARED) - KEPT_URLS)]
    for old in evicted:
        old.dispose(retire=True)
    return pool
