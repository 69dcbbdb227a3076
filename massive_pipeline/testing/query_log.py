"""Counting the queries a candle read sends, at the database driver's edge (tests and benchmarks).

The reader opens its own connections (ADBC, or psycopg without it, for PostgreSQL; sqlite3 for
SQLite); these spies wrap the drivers' `connect` so each connection reports what it sends:
every statement an ADBC cursor executes, libpq's protocol trace for psycopg (every simple Query
and every Parse of the extended protocol is a statement on the wire), sqlite3's trace callback
on SQLite. The drivers still do all the work; nothing of the reader is replaced.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import psycopg
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


class _Cursor:
    """An ADBC cursor that notes each statement before the real cursor runs it."""

    def __init__(self, cursor: Any, sent: list[str]) -> None:
        self._cursor, self._sent = cursor, sent

    def execute(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        self._sent.append(operation)
        return self._cursor.execute(operation, *args, **kwargs)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _Connection:
    def __init__(self, conn: Any, sent: list[str]) -> None:
        self._conn, self._sent = conn, sent

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self._conn.cursor(*args, **kwargs), self._sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def query_log() -> Iterator[QueryLog]:
    """Spy on every psycopg / sqlite3 connection opened inside the block; restores both drivers after."""
    log = QueryLog()
    real_pg, real_sqlite, real_adbc = psycopg.connect, sqlite3.connect, adbc.connect

    def adbc_connect(*args: Any, **kwargs: Any) -> _Connection:
        return _Connection(real_adbc(*args, **kwargs), log._sqlite)

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

    psycopg.connect, sqlite3.connect, adbc.connect = pg_connect, sqlite_connect, adbc_connect  # type: ignore[assignment]
    try:
        yield log
    finally:
        psycopg.connect, sqlite3.connect, adbc.connect = real_pg, real_sqlite, real_adbc  # type: ignore[assignment]
        log.collect()
