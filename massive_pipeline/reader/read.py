"""`read_candles` and `iter_candles`: the candles of any store as one frame, or as bounded chunks.

Both read the store that `MASSIVE_DATABASE_URL` names (or `url=`), through the store's bulk read
paths (ADBC on PostgreSQL, postgres_adbc.py; sqlite3 into numpy on SQLite, sqlite_read.py),
inside one read-only snapshot. A whole read is one
query however many symbols it covers; a chunked read is one query per chunk (pages.py). A
symbol the store holds no bars of at that timeframe is an error naming it; a stored symbol with
no bars in the range gives an empty frame with the usual dtypes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

from adbc_driver_manager import Error as AdbcError
from adbc_driver_manager import OperationalError as AdbcOperationalError
from sqlalchemy.engine import URL

from massive_pipeline.reader import postgres_adbc, sqlite_read
from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.errors import NoSuchSeriesError
from massive_pipeline.reader.frames import build, concat, polars_module
from massive_pipeline.reader.pages import Page, iter_pages
from massive_pipeline.reader.request import ReadRequest, make_request, positive_int, positive_span
from massive_pipeline.reader.sql import PG, SQLITE, bar_query, missing_series_query, stored_symbols_query
from massive_pipeline.store.engine import mask_url, parse_store_url, resolve_database_url, unavailable
from massive_pipeline.store.errors import StoreError

DEFAULT_CHUNK_ROWS = 500_000


def _store_url(url: str | None) -> URL:
    resolved = resolve_database_url(url)
    return parse_store_url(resolved, origin="url argument" if url is not None else "MASSIVE_DATABASE_URL")


def _no_table(err: BaseException) -> bool:
    text = str(err)
    return "no such table: candles" in text or 'relation "candles" does not exist' in text


@contextmanager
def _translated(url: URL, operation: str) -> Iterator[None]:
    """Driver errors as the store's errors, naming the store by its masked URL."""
    try:
        yield
    except (StoreError, ValueError, ImportError):
        raise
    except AdbcOperationalError as err:
        raise unavailable(url, operation, err) from err
    except (AdbcError, sqlite3.Error) as err:
        if _no_table(err):
            raise StoreError(
                f"candle store {mask_url(url)} has no candles table: no candle was ever stored there"
            ) from err
        text = " ".join(str(err).split()).split(" Query was: ")[0]  # ADBC appends the whole SQL text
        if url.password:
            text = text.replace(str(url.password), "***")
        raise StoreError(f"candle store {mask_url(url)}: {operation} failed: {text}") from err


class _Reader:
    """One snapshot of one store: runs pages and small probe queries on the backend's connection."""

    def __init__(self, url: URL, request: ReadRequest) -> None:
        self.url, self.request = url, request
        self.dialect = PG if url.get_backend_name() == "postgresql" else SQLITE
        self.backend = postgres_adbc if self.dialect == PG else sqlite_read

    def open(self) -> AbstractContextManager[Any]:
        return self.backend.snapshot(self.url)

    def fetch(self, conn: Any, page: Page) -> Batch:
        query = bar_query(self.request, page)
        return Batch.of(self.request.symbols, query, self.backend.fetch(conn, query))

    def query(self, conn: Any, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        return self.backend.query(conn, sql, params)

    def check_series(self, conn: Any, symbols: Sequence[str]) -> None:
        """Raise `NoSuchSeriesError` for the first of `symbols` the store holds no bars of."""
        if not symbols:
            return
        tf = self.request.timeframe
        (row,) = self.query(conn, *missing_series_query(self.dialect, tuple(symbols), tf))
        unknown = [s for s, present in zip(symbols, row, strict=True) if not present]
        if unknown:
            stored = [r[0] for r in self.query(conn, *stored_symbols_query(self.dialect, tf))]
            raise NoSuchSeriesError(unknown[0], tf, mask_url(self.url), stored)


def _prepare(url: str | None, request: ReadRequest) -> _Reader:
    if request.output == "polars":
        polars_module()
    return _Reader(_store_url(url), request)


def read_candles(
    symbols: str | Iterable[str],
    timeframe: str,
    start: Any,
    end: Any,
    *,
    columns: Sequence[str] | None = None,
    include_forming: bool = False,
    output: str = "pandas",
    url: str | None = None,
) -> Any:
    """The bars of `symbols` at `timeframe` in [start, end) as one frame sorted by symbol, then ts.

    `symbols`: one name or a list. `start`/`end`: UTC days (`"2026-10-01"`, a `date`) or
    timestamps (naive ones are UTC); `end` is exclusive. `columns`: a subset of open, high,
    low, close, volume, vwap, trades, source, ingested_at, complete (`symbol` and `ts` always
    come first). Bars still forming when stored are left out unless `include_forming`.
    `output`: "pandas" (default), "arrow" (a `pyarrow.Table`) or "polars" (needs the
    `massive_pipeline[polars]` extra). `url`: a store URL instead of `MASSIVE_DATABASE_URL`.

    Reads with one query however many symbols. Symbols sort in the store's order: byte order on
    SQLite and on PostgreSQL with a C collation, alphabetical for catalog symbols in any locale.
    """
    request = make_request(symbols, timeframe, start, end, columns, include_forming, output)
    reader = _prepare(url, request)
    operation = f"read_candles({', '.join(request.symbols)} {request.timeframe})"
    with _translated(reader.url, operation), reader.open() as conn:
        batches = list(iter_pages(request, lambda page: reader.fetch(conn, page), chunk_rows=None, span=None))
        present = set().union(*(b.present_codes() for b in batches))
        reader.check_series(conn, [s for i, s in enumerate(request.symbols) if i not in present])
    return build(concat(batches, request.symbols, request.columns), request.output)


def iter_candles(
    symbols: str | Iterable[str],
    timeframe: str,
    start: Any,
    end: Any,
    *,
    columns: Sequence[str] | None = None,
    include_forming: bool = False,
    output: str = "pandas",
    url: str | None = None,
    chunk_rows: int | None = None,
    chunk: str | timedelta | None = None,
) -> Iterator[Any]:
    """`read_candles` in bounded pieces, for ranges larger than memory; one query per piece.

    `chunk_rows`: at most this many rows per frame (default 500,000 when `chunk` is not given);
    frames follow each other in (symbol, ts) order and concatenate to the whole read.
    `chunk`: a time span (`"30D"`, a `timedelta`): one frame per span of the range holding every
    symbol's bars of that span, spans in time order (so the concatenation is in span, symbol, ts
    order); with `chunk_rows` too, a span is further cut into frames of at most that many rows.
    Keyset pagination on (symbol, ts), inside one snapshot, so chunk edges lose or repeat no row.
    Unknown symbols are reported before the first frame.
    """
    request = make_request(symbols, timeframe, start, end, columns, include_forming, output)
    span = None if chunk is None else positive_span(chunk, "chunk")
    rows = DEFAULT_CHUNK_ROWS if chunk_rows is None and span is None else chunk_rows
    rows = None if rows is None else positive_int(rows, "chunk_rows")
    reader = _prepare(url, request)
    return _iterate(reader, request, rows, span)


def _iterate(reader: _Reader, request: ReadRequest, rows: int | None, span: Any) -> Iterator[Any]:
    operation = f"iter_candles({', '.join(request.symbols)} {request.timeframe})"
    with _translated(reader.url, operation), reader.open() as conn:
        reader.check_series(conn, request.symbols)
        for batch in iter_pages(request, lambda page: reader.fetch(conn, page), chunk_rows=rows, span=span):
            yield build(batch, request.output)
