"""SQLite read path: the page's rows streamed from the sqlite3 cursor straight into a numpy record array.

SQLite has no bulk binary export; the cheapest way from its cursor to columns is
`np.fromiter(cursor, structured dtype)`, which converts each row tuple in C without holding a
list of a million tuples. Nullable columns arrive as `coalesce` plus an IS NULL flag (sql.py),
so every field has a fixed numpy type; timestamps are the store's epoch milliseconds.

The file is opened read-only by URI (`mode=ro`): a reader pointed at a path where nothing was
stored gets a clear error instead of a new empty database, and can never write. Pages of one
read share a single read transaction, which in WAL mode is one consistent snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy.engine import URL

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.pages import Page
from massive_pipeline.reader.request import ReadRequest
from massive_pipeline.reader.sql import SQLITE, page_query, selected
from massive_pipeline.store.engine import SQLITE_BUSY_TIMEOUT_MS, mask_url
from massive_pipeline.store.epochs import NS_PER_MS, epoch_ms
from massive_pipeline.store.errors import StoreUnavailableError
from massive_pipeline.store.schema import SOURCE_LENGTH

_ROW_DTYPES: dict[str, str] = {
    "open": "f8",
    "high": "f8",
    "low": "f8",
    "close": "f8",
    "volume": "f8",
    "vwap": "f8",
    "trades": "i8",
    "ingested_at": "i8",
    "complete": "?",
    "source": f"U{SOURCE_LENGTH}",
}


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


def _row_dtype(request: ReadRequest) -> np.dtype:
    layout = [("code", "i4"), ("ts", "i8")]
    for s in selected(request.columns):
        layout.append((f"{s.column}_null", "?") if s.null_flag else (s.column, _ROW_DTYPES[s.column]))
    return np.dtype(layout)


def fetch_page(conn: sqlite3.Connection, request: ReadRequest, page: Page) -> Batch:
    """Run one page and convert its rows to a `Batch`."""
    sql, params = page_query(SQLITE, request, page, epoch_ms)
    cursor = conn.execute(sql, params)
    try:
        records = np.fromiter(cursor, dtype=_row_dtype(request))
    finally:
        cursor.close()
    values: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for s in selected(request.columns):
        if s.null_flag:
            nulls[s.column] = records[f"{s.column}_null"]
        elif s.column == "ingested_at":
            values[s.column] = records[s.column] * NS_PER_MS
        elif s.column == "source":
            values[s.column] = records[s.column].astype(object)
        else:
            values[s.column] = records[s.column]
    return Batch(
        symbols=request.symbols,
        codes=records["code"],
        ts_ns=records["ts"] * NS_PER_MS,
        values=values,
        nulls=nulls,
    )
