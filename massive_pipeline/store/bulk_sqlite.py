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
from massive_pipeline.store.timeutil import NS_PER_MS, epoch_ms

_INSERT = (
    "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, "
    "source, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _with_nulls(values: np.ndarray, null: np.ndarray) -> list[object]:
    if not null.any():
        return values.tolist()
    out = values.astype(object)
    out[null] = None
    return out.tolist()


def iter_rows(
    symbol: str, timeframe: str, bars: BarArrays, source: str, ingested_at: pd.Timestamp
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
        strict=False,
    )


def insert_bars(
    conn: Connection, symbol: str, timeframe: str, bars: BarArrays, source: str, ingested_at: pd.Timestamp
) -> None:
    """Insert a window's bars into `candles` within the connection's open transaction."""
    if not len(bars):
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(_INSERT, iter_rows(symbol, timeframe, bars, source, ingested_at))
    finally:
        cursor.close()
