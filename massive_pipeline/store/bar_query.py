"""One bulk read of candles as the store's fast read paths run it, checked when it is made.

`CandleStore.read`, `read_before` and every page of the reader (`massive_pipeline.reader`) are
the same kind of query: bars of some symbols at one timeframe in a half-open time range, in
primary-key order, optionally after a keyset position and limited. Describing that once lets the
PostgreSQL and SQLite paths (bulk_read_postgres.py, bulk_read_sqlite.py) share one WHERE clause
and lets the PostgreSQL path inline its values into the SQL text (ADBC reads a query without
bound parameters through binary COPY, see bulk_read_postgres.py): every value a `BarQuery` holds
has been checked here to be a symbol name `check_symbol` accepts, a timeframe of the closed list,
a timestamp or an integer, so what reaches the SQL text is never arbitrary input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.store.epochs import NS_PER_MS
from massive_pipeline.store.validate import check_symbol, check_timeframe

# The store's candle columns after `ts`, in their stored order (the `read` frame's order).
VALUE_COLUMNS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
    "source",
    "ingested_at",
    "complete",
)
NULLABLE: tuple[str, ...] = ("vwap", "trades")
# The name of the symbol-position column a multi-symbol read adds (positions in `BarQuery.symbols`).
CODE = "code"


@dataclass(frozen=True)
class BarQuery:
    """Bars of `symbols` (store order: sorted) at `timeframe` with start <= ts < end, in (symbol, ts) order.

    `start` and `end` are whole milliseconds, as bars are, so every backend compares them exactly;
    `after_ts` may be any instant (the backends floor it to their grid, which keeps `ts > after_ts`
    exact for bars on it).

    `start`/`end` None: unbounded. `after_symbol` keeps only symbols after it; `after_ts` (one
    symbol only) keeps the bars after that instant instead of those from `start` (a keyset page:
    one lower bound, so the index range starts where the previous page stopped); `limit` caps the
    rows; `newest_first` (one symbol only) reads backwards from `end`, for "the last N bars before".
    """

    symbols: tuple[str, ...]
    timeframe: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    columns: tuple[str, ...] = VALUE_COLUMNS
    include_forming: bool = True
    after_symbol: str | None = None
    after_ts: pd.Timestamp | None = None
    limit: int | None = None
    newest_first: bool = False

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("a bar query needs at least one symbol")
        for symbol in (*self.symbols, *([self.after_symbol] if self.after_symbol is not None else [])):
            check_symbol(symbol)
        if check_timeframe(self.timeframe) != self.timeframe:
            raise ValueError(f"timeframe must be given in its canonical form, got {self.timeframe!r}")
        unknown = [c for c in self.columns if c not in VALUE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; the candle store has {', '.join(VALUE_COLUMNS)}")
        for name in ("start", "end", "after_ts"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, pd.Timestamp) and value.tzinfo is not None):
                raise TypeError(f"{name} must be a UTC pandas Timestamp, got {value!r}")
            if name != "after_ts" and value is not None and value.value % NS_PER_MS:
                raise ValueError(
                    f"{name} must be a whole millisecond (store.validate.bound rounds it so), got {value}"
                )
        if (self.after_ts is not None or self.newest_first) and len(self.symbols) != 1:
            raise ValueError("after_ts and newest_first need exactly one symbol")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0
        ):
            raise ValueError(f"limit must be a non-negative integer, got {self.limit!r}")

    @property
    def multi(self) -> bool:
        """Whether rows carry the `code` column (the position of their symbol in `symbols`)."""
        return len(self.symbols) > 1


def where_clause(
    query: BarQuery, value: Callable[[object], str], instant: Callable[[pd.Timestamp], str], *, complete: str
) -> str:
    """The WHERE and ORDER BY of `query`; `value`/`instant` render a text or a timestamp the backend's way.

    `complete` is the backend's spelling of "the bar is complete". The symbol list is always an
    `IN (...)` (one query however many symbols); the order is the primary key's, so the scan
    is one index range and needs no sort.
    """
    where = [f"timeframe = {value(query.timeframe)}"]
    if query.after_ts is not None:
        where += [f"symbol = {value(query.symbols[0])}", f"ts > {instant(query.after_ts)}"]
    else:
        where.append(f"symbol IN ({', '.join(value(s) for s in query.symbols)})")
        if query.after_symbol is not None:
            where.append(f"symbol > {value(query.after_symbol)}")
    if query.start is not None and query.after_ts is None:
        where.append(f"ts >= {instant(query.start)}")
    if query.end is not None:
        where.append(f"ts < {instant(query.end)}")
    if not query.include_forming:
        where.append(complete)
    direction = " DESC" if query.newest_first else ""
    text = f" WHERE {' AND '.join(where)} ORDER BY symbol{direction}, timeframe{direction}, ts{direction}"
    if query.limit is not None:
        text += f" LIMIT {int(query.limit)}"
    return text
