"""SQLite read path of the reader: its own read-only connection, every page inside one read transaction.

The query of a page is the store's bulk read (store/bulk_read_sqlite.py: rows streamed from the
cursor into a numpy record array, NULLs as flag bits, sources as small codes). What is the
reader's own here is the connection. The file is opened read-only by URI (`mode=ro`): a reader pointed at a path where nothing was
stored gets a clear error instead of a new empty database, and can never write. Pages of one
read share a single read transaction, which in WAL mode is one consistent snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from sqlalchemy.engine import URL

from massive_pipeline.store import bulk_read_sqlite
from massive_pipeline.store.bar_query import BarQuery
from massive_pipeline.store.engine import SQLITE_BUSY_TIMEOUT_MS, mask_url
from massive_pipeline.store.errors import StoreUnavailableError


def database_path(url: URL) -> Path:
    """The file of a SQLite store URL; an in-memory URL has nothing to read."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise StoreUnavailableError(
            f"candle store {mask_url(url)} names no database file to read (expected sqlite:///path/to/candles.sqlite)"
        )
    return Path(database).expanduser()


@contextmanager
def snapshot(url: URL) -> Iterator[sqlite3.Connection]:
    """A read-only connection with one read transaction open for every page of the read."""
    path = database_path(url)
    if not path.is_file():
        raise StoreUnavailableError(
            f"candle store {mask_url(url)} does not exist (no file {path}): nothing has been stored there yet"
        )
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN")
        yield conn
    finally:
        conn.close()


def query(conn: sqlite3.Connection, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    return list(conn.execute(sql, params).fetchall())


def fetch(conn: sqlite3.Connection, bars: BarQuery) -> pa.Table:
    return bulk_read_sqlite.fetch(conn, bars)
