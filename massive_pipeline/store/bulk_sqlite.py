"""SQLite write path: one `executemany` over a row iterator, inside the caller's transaction.

SQLite has no COPY; `executemany` on the raw sqlite3 cursor with a generator of tuples is its
fastest bulk insert, and feeding it lazily keeps a million-row window from being materialized
twice in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from massive_pipeline.store.bars import BarArrays
from massive_pipeline.store.epochs import NS_PER_MS, epoch_ms
from massive_pipeline.store.window_merge import VALUE_FIELDS, StoredWindow

_INSERT = (
    "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, "
    "source, ingested_at, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATE = (
    "SELECT ts, open, high, low, close, volume, complete FROM candles "
    "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts"
)
_DELETE_RUN = "DELETE FROM candles WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts <= ?"


def _with_nulls(values: np.ndarray, null: np.ndarray) -> list[object]:
    if not null.any():
        return values.tolist()
    out = values.astype(object)
    out[null] = None
    return out.tolist()


def iter_rows(
    symbol: str, timeframe: str, bars: BarArrays, source: str, ingested_at: pd.Timestamp, complete: np.ndarray
) -> Iterator[tuple[object, ...]]:
    """Rows for `_INSERT`, built from whole columns (`tolist`) rather than per-row conversions."""
    return zip(
        repeat(symbol),
        repeat(timeframe),
        (bars.ts_ns // NS_PER_MS).tolist(),
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
        _with_nulls(bars.vwap, bars.vwap_null),
        _with_nulls(bars.trades, bars.trades_null),
        repeat(source),
        repeat(epoch_ms(ingested_at)),
        complete.astype(np.int8).tolist(),
        strict=False,
    )


def insert_bars(
    conn: Connection, symbol: str, timeframe: str, bars: BarArrays, source: str, ingested_at: pd.Timestamp,
    complete: np.ndarray,
) -> None:
    """Insert a window's bars into `candles` within the connection's open transaction."""
    if not len(bars):
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(_INSERT, iter_rows(symbol, timeframe, bars, source, ingested_at, complete))
    finally:
        cursor.close()


def read_window_state(conn: Connection, symbol: str, timeframe: str, lo: pd.Timestamp, hi: pd.Timestamp) -> StoredWindow:
    """The window's stored bars (ts, OHLCV, complete); one float matrix, as SQLite hands back tuples."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        rows = cursor.execute(_STATE, (symbol, timeframe, epoch_ms(lo), epoch_ms(hi))).fetchall()
    finally:
        cursor.close()
    if not rows:
        return StoredWindow.empty()
    matrix = np.array(rows, dtype=np.float64)  # ms timestamps stay exact below 2**53
    return StoredWindow(
        ts_ns=matrix[:, 0].astype(np.int64) * NS_PER_MS,
        values={f: matrix[:, i + 1] for i, f in enumerate(VALUE_FIELDS)},
        complete=matrix[:, 6] != 0,
    )


def delete_runs(conn: Connection, symbol: str, timeframe: str, firsts: np.ndarray, lasts: np.ndarray) -> int:
    """Delete the closed ts ranges [firsts[i], lasts[i]] (epoch ns) of one series."""
    if not len(firsts):
        return 0
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(
            _DELETE_RUN,
            zip(repeat(symbol), repeat(timeframe), (firsts // NS_PER_MS).tolist(), (lasts // NS_PER_MS).tolist(),
                strict=False),
        )
        return int(cursor.rowcount)
    finally:
        cursor.close()
