"""Counting the queries a candle read sends, at the database driver's edge (tests and benchmarks).

The bulk reads use ADBC on PostgreSQL, on connections the process keeps from read to read
(store/adbc_pool.py), so the ADBC spy sits on the driver's cursor class and sees every statement
any ADBC cursor executes, on connections opened before the block too. psycopg and sqlite3
connections opened inside the block report what they send: libpq's protocol trace for psycopg
(every simple Query and every Parse of the extended protocol is a statement on the wire),
sqlite3's trace callback on SQLite. The drivers still do all the work; nothing of the reader is
replaced.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from adbc_driver_manager.dbapi import Cursor as AdbcCursor
from psycopg import pq


class QueryLog:
    """Statements that touched the `candles` table, as sent by every connection opened meanwhile."""

    def __init__(self) -> None:
        self._traces: list[Any] = []
        self._sqlite: list[str] = []  # and ADBC's statements: both are the text as executed
        self._pg: list[str] = []

    def collect(self) -> None:
        """Read and close the libpq traces (their connections are closed by now)."""
        for trace in self._traces:
            trace.seek(0)
            for line in trace.read().decode("utf-8", "replace").splitlines():
                parts = line.split("\t")
                if len(parts) >= 4 and parts[0] == "F" and parts[2] in ("Query", "Parse"):
                    self._pg.append(parts[3])
            trace.close()
        self._traces.clear()

    def candle_queries(self) -> list[str]:
        sent = self._sqlite + self._pg
        return [
            s for s in sent if "FROM candles" in s and not s.lstrip().upper().startswith(("PRAGMA", "BEGIN"))
        ]

    def data_queries(self) -> list[str]:
        """The page queries (the reads of bars), leaving out the existence probes."""
        return [q for q in self.candle_queries() if "EXISTS" not in q]


@contextmanager
def query_log() -> Iterator[QueryLog]:
    """Spy on every ADBC statement and every psycopg / sqlite3 connection opened inside the block.

    The drivers are restored afterwards.
    """
    log = QueryLog()
    real_pg, real_sqlite, real_execute = psycopg.connect, sqlite3.connect, AdbcCursor.execute

    def adbc_execute(cursor: AdbcCursor, operation: Any, *args: Any, **kwargs: Any) -> Any:
        log._sqlite.append(operation)
        return real_execute(cursor, operation, *args, **kwargs)

    def pg_connect(*args: Any, **kwargs: Any) -> psycopg.Connection:
        conn = real_pg(*args, **kwargs)
        trace = tempfile.TemporaryFile()  # noqa: SIM115 - closed by collect() when the log ends
        log._traces.append(trace)
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        return conn

    def sqlite_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_sqlite(*args, **kwargs)
        conn.set_trace_callback(log._sqlite.append)
        return conn

    psycopg.connect, sqlite3.connect = pg_connect, sqlite_connect  # type: ignore[assignment]
    AdbcCursor.execute = adbc_execute  # type: ignore[method-assign]
    try:
        yield log
    finally:
        psycopg.connect, sqlite3.connect = real_pg, real_sqlite  # type: ignore[assignment]
        AdbcCursor.execute = real_execute  # type: ignore[method-assign]
        log.collect()
