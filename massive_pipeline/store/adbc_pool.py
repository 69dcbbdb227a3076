"""A few open ADBC connections of one PostgreSQL store, reused from read to read.

Opening an ADBC connection costs about 25 ms (the driver reads the server's type catalog), more
than reading a day of minute bars through it (about 1 ms), and `CandleStore.read` is called for
every partition an asset or a check loads. So each store keeps the connections its reads
opened, up to `keep` idle ones; a read takes one, or opens one when none is idle.

A kept connection may have died meanwhile (server restart, idle timeout): when a read on a
reused connection fails with a connection-level error, that connection and every other idle
one are dropped and the read runs once more on a fresh connection (a read changes nothing, so
running it again is safe). A connection is never shared by two threads at once, and a child
process never touches connections its parent opened (closing them would end the parent's
sessions); like the store's SQLAlchemy engine, `dispose` before forking.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from adbc_driver_manager import OperationalError

T = TypeVar("T")
# Connections a forked child inherited: kept referenced so that they are never closed from the child.
_INHERITED: list[Any] = []


def _close_all(connections: list[Any]) -> None:
    while connections:
        connections.pop().close()


class AdbcPool:
    """Idle ADBC connections made by `connect`, at most `keep` of them."""

    def __init__(self, connect: Callable[[], Any], *, keep: int = 4) -> None:
        self._connect, self._keep = connect, keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # Closes what is idle when the pool is collected, so an undisposed store leaks no session.
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def _take(self) -> Any | None:
        with self._lock:
            if self._pid != os.getpid():
                _INHERITED.extend(self._idle)
                self._idle.clear()
                self._pid = os.getpid()
            return self._idle.pop() if self._idle else None

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def run(self, work: Callable[[Any], T]) -> T:
        """`work(connection)` on an idle connection or a new one; the connection is kept for the next read."""
        conn = self._take()
        if conn is not None:
            try:
                return self._use(conn, work)
            except OperationalError:
                self.dispose()  # connections idle as long as that one may be dead too
        return self._use(self._connect(), work)

    def _use(self, conn: Any, work: Callable[[Any], T]) -> T:
        try:
            result = work(conn)
        except BaseException:
            conn.close()
            raise
        self._give_back(conn)
        return result

    def dispose(self) -> None:
        """Close every idle connection (those in use close when their read ends)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            idle = list(self._idle)
            self._idle.clear()
        _close_all(idle)
