"""The candle store: idempotent window replacement and reads of OHLCV bars, plus sync status.

A partition materialization replaces its whole window for one symbol and timeframe in a single
transaction (delete the window, bulk-insert the bars), so re-running never duplicates and a crash
leaves either the old bars or the new ones. The store knows SQL only: no HTTP, no Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, and_, cast, delete, extract, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from massive_pipeline.core.timeframes import Timeframe, parse_timeframe
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.store import (
    bulk_postgres,
    bulk_read_postgres,
    bulk_read_sqlite,
    bulk_sqlite,
    migrate,
    month_rows,
    partitions,
)
from massive_pipeline.store.bar_query import BarQuery
from massive_pipeline.store.bar_table import to_frame
from massive_pipeline.store.bars import prepare_bars
from massive_pipeline.store.broker_tables import BrokerTablesMixin
from massive_pipeline.store.checksum import checksum_chunks
from massive_pipeline.store.engine import (
    SQLITE_BEGIN_OPTION,
    connect,
    create_store_engine,
    mask_url,
    resolve_database_url,
    translate_errors,
)
from massive_pipeline.store.epochs import us_to_datetimes
from massive_pipeline.store.provider_comparisons import ProviderComparisonsMixin
from massive_pipeline.store.revisions import RevisionsMixin, insert_revisions, revision_frame
from massive_pipeline.store.schema import SYNC_STATUSES, candles, sync_status
from massive_pipeline.store.side_tables import SideTablesMixin
from massive_pipeline.store.validate import (
    bound,
    check_source,
    check_symbol,
    check_timeframe,
    optional_bound,
    window,
)
from massive_pipeline.store.window_merge import (
    VALUE_FIELDS,
    StoredWindow,
    complete_mask,
    contiguous_runs,
    plan_merge,
)

SYNC_COLUMNS: tuple[str, ...] = (
    "symbol", "timeframe", "last_sync_at", "last_bar_ts", "rows", "status", "error", "updated_at",
)
CHECKSUM_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class WriteResult:
    """What one window write did.

    `rows_missing_from_answer`: stored bars of the window the answer lacked; they are kept
    (`rows_removed` 0) unless removals were accepted. `removed` and `missing` list them (ts and
    OHLCV), `revisions` the complete bars whose values the answer changed.
    """

    rows_written: int
    rows_deleted: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    rows_new: int = 0
    rows_unchanged: int = 0
    rows_revised: int = 0
    max_rel_change: float | None = None
    rows_missing_from_answer: int = 0
    rows_removed: int = 0
    rows_kept_protected: int = 0
    rows_forming: int = 0
    stored_before: int = 0
    missing: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    revisions: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)

    @property
    def answer_empty(self) -> bool:
        return self.rows_written == 0 and self.rows_kept_protected == 0


def _stored_rows(stored: StoredWindow, positions: np.ndarray) -> pd.DataFrame:
    """Stored bars at `positions` as a small frame (ts and OHLCV) for metadata and logs."""
    return pd.DataFrame(
        {"ts": pd.to_datetime(stored.ts_ns[positions], utc=True),
         **{f: stored.values[f][positions] for f in VALUE_FIELDS}}
    )


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


class CandleStore(SideTablesMixin, RevisionsMixin, BrokerTablesMixin, ProviderComparisonsMixin):
    """OHLCV candles in SQLite (default) or PostgreSQL, addressed by (symbol, timeframe, ts).

    `url=None` reads `MASSIVE_DATABASE_URL` and falls back to `$DAGSTER_HOME/candles.sqlite`.
    Connections are opened lazily: constructing a store never touches the database.
    """

    def __init__(self, url: str | None = None) -> None:
        self._url = make_url(resolve_database_url(url))
        self.url_display: str = mask_url(self._url)
        self.dialect: str = self._url.get_backend_name()
        self._engine = create_store_engine(self._url)
        self._partitioned: bool | None = None  # PostgreSQL: candles partitioned (revision 0006)? Asked once.

    def __repr__(self) -> str:
        return f"CandleStore({self.url_display!r})"

    def __enter__(self) -> CandleStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for callers that need plain SQL next to the store's tables."""
        return self._engine

    def dispose(self) -> None:
        """Close pooled connections (call before forking or at shutdown)."""
        self._engine.dispose()
        if self._is_pg:  # and the bulk reads' kept ADBC connections to this store
            bulk_read_postgres.pool(self._url).dispose()

    @contextmanager
    def _transaction(self, operation: str, *, write: bool = False) -> Iterator[Connection]:
        with translate_errors(self._url, operation):
            conn = connect(self._engine, self._url, operation)
            with conn:
                if write and self.dialect == "sqlite":
                    conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                with conn.begin():
                    yield conn

    @property
    def _is_pg(self) -> bool:
        return self.dialect == "postgresql"

    def _epoch_us(self, column: Any) -> ColumnElement[int]:
        """A timestamp column as epoch microseconds, converted in SQL so reads stay vectorized."""
        if self._is_pg:
            return cast(extract("epoch", column) * 1_000_000, BigInteger)
        return type_coerce(column, BigInteger) * 1_000

    # -- schema -------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Create the tables, or upgrade a store made by older code in place (see `migrate`).

        Safe to call repeatedly and from concurrent processes; at the current revision it is one
        version read. A store written by newer code is refused with a `StoreError`.
        """
        migrate.ensure_schema(self._transaction, self.url_display)
        self._partitioned = None

    def _is_partitioned(self, conn: Connection) -> bool:
        """Whether `candles` is partitioned (PostgreSQL at revision 0006 or later), asked once per store."""
        if self._partitioned is None:
            self._partitioned = self._is_pg and partitions.is_partitioned(conn)
        return self._partitioned

    def _ensure_months(self, conn: Connection, tf: str, ts_ns: np.ndarray) -> None:
        """Make the month partitions the bars at `ts_ns` need (and the next one) before they are written.

        The lookup runs in the write transaction, which has locked no table yet; missing months are
        made in a short transaction of their own (partitions.py), so they are committed, and
        visible to this transaction's next statement, before the COPY routes rows to them.
        """
        if not self._is_partitioned(conn):
            return
        needed = partitions.missing(conn, tf, partitions.months_of(ts_ns))
        if needed:
            with self._transaction(f"create partitions of {tf}", write=True) as ddl:
                partitions.create(ddl, tf, needed)

    # -- candles ------------------------------------------------------------------------------

    def write_window(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        bars: pd.DataFrame,
        *,
        source: str = "massive",
        accept_removals: bool = False,
        run_id: str | None = None,
        now: pd.Timestamp | None = None,
        protect_before: pd.Timestamp | None = None,
    ) -> WriteResult:
        """Merge an answer for [start, end) into one series, atomically (see `window_merge`).

        Bars of the answer replace stored bars with the same start; stored bars the answer lacks
        are kept and counted, or deleted when `accept_removals`; complete bars whose OHLCV change
        are recorded in `candle_revisions` with `run_id`. A bar is stored `complete` when its
        period had ended at `now`. Stored bars before `protect_before` are never replaced.
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        lo, hi = window(start, end)
        src = check_source(source)
        label = f"write_window({sym} {tf} [{lo}, {hi}))"
        arrays = prepare_bars(bars, lo, hi, label)
        stamp = pd.Timestamp.now(tz="UTC") if now is None else to_utc(now, "now")
        ingested_at = stamp.floor("ms")
        bulk = bulk_postgres if self._is_pg else bulk_sqlite
        protect_ns = None if protect_before is None else bound(protect_before, "protect_before").value
        with self._transaction(label, write=True) as conn:
            if self._is_pg:
                bulk_postgres.lock_series(conn, sym, tf)
                self._ensure_months(conn, tf, arrays.ts_ns)
            stored = bulk.read_window_state(conn, sym, tf, lo, hi)
            plan = plan_merge(stored, arrays.ts_ns, arrays.values(), protect_before_ns=protect_ns)
            written = arrays.take(plan.answer_keep)
            complete = complete_mask(written.ts_ns, parse_timeframe(tf), stamp)
            deleting_all = len(plan.stored_protected) == 0 and (accept_removals or not len(plan.stored_missing))
            if deleting_all:  # the common case: one range delete, as fast as a plain replace
                deleted = 0 if not len(stored) else int(conn.execute(
                    delete(candles).where(self._series(sym, tf), candles.c.ts >= lo, candles.c.ts < hi)
                ).rowcount)
                removed_ns = stored.ts_ns
            else:
                doomed = plan.stored_replaced
                if accept_removals:
                    doomed = np.union1d(doomed, plan.stored_missing)
                firsts, lasts = contiguous_runs(doomed)
                deleted = bulk.delete_runs(conn, sym, tf, stored.ts_ns[firsts], stored.ts_ns[lasts])
                removed_ns = stored.ts_ns[doomed]
            if self._is_pg:
                bulk_postgres.copy_bars(conn, sym, tf, written, src, ingested_at, complete)
            else:
                bulk_sqlite.insert_bars(conn, sym, tf, written, src, ingested_at, complete)
            # the window's stored bars were read under this transaction's lock: exactly what went
            month_rows.record(conn, sym, tf, written.ts_ns, removed_ns)
            revisions = revision_frame(sym, tf, stored, arrays, plan, run_id, ingested_at)
            insert_revisions(conn, revisions)
        missing = _stored_rows(stored, plan.stored_missing)
        return WriteResult(
            rows_written=len(written),
            rows_deleted=deleted,
            first_ts=written.first_ts,
            last_ts=written.last_ts,
            rows_new=len(plan.answer_new),
            rows_unchanged=len(plan.stored_replaced) - len(plan.revised_stored),
            rows_revised=len(plan.revised_stored),
            max_rel_change=plan.max_rel_change,
            rows_missing_from_answer=len(plan.stored_missing),
            rows_removed=len(plan.stored_missing) if accept_removals else 0,
            rows_kept_protected=len(plan.stored_protected),
            rows_forming=int((~complete).sum()),
            stored_before=len(stored),
            missing=missing,
            revisions=revisions,
        )

    def replace_window(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        bars: pd.DataFrame,
        *,
        source: str = "massive",
        run_id: str | None = None,
        now: pd.Timestamp | None = None,
    ) -> WriteResult:
        """Make `bars` the whole content of [start, end): `write_window` with removals accepted.

        Only for callers that know the bars are the complete truth of the window (tests, tools
        that rebuild a series); provider answers go through `write_window`, which keeps what the
        answer lacks.
        """
        return self.write_window(
            symbol, timeframe, start, end, bars, source=source, accept_removals=True, run_id=run_id, now=now
        )

    @staticmethod
    def _series(symbol: str, timeframe: str) -> ColumnElement[bool]:
        return and_(candles.c.symbol == symbol, candles.c.timeframe == timeframe)

    @staticmethod
    def _filters(
        symbol: str | None, timeframe: Timeframe | str | None, start: Any, end: Any
    ) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if symbol is not None:
            conds.append(candles.c.symbol == check_symbol(symbol))
        if timeframe is not None:
            conds.append(candles.c.timeframe == check_timeframe(timeframe))
        lo, hi = optional_bound(start, "start"), optional_bound(end, "end")
        if lo is not None:
            conds.append(candles.c.ts >= lo)
        if hi is not None:
            conds.append(candles.c.ts < hi)
        return conds

    def read(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        *,
        include_forming: bool = True,
        after: pd.Timestamp | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Bars of one series in [start, end), sorted by ts, with UTC timestamps.

        `complete` says whether the bar's period had ended when it was stored;
        `include_forming=False` leaves such bars out (exports, training sets). `after` keeps only
        bars with ts > after and `limit` only the first `limit` of them: a page of a series in
        one query (the service's `GET /candles` pages so).
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        lo, keyset = optional_bound(start, "start"), None if after is None else to_utc(after, "after")
        if keyset is not None and (lo is None or keyset >= lo):  # ts > after implies ts >= start
            lo = None
        else:  # ts >= start implies ts > after (or there is no `after`)
            keyset = None
        query = BarQuery(
            (sym,),
            tf,
            lo,
            optional_bound(end, "end"),
            include_forming=include_forming,
            after_ts=keyset,
            limit=limit,
        )
        return self._bulk_read(query, f"read({sym} {tf})")

    def read_before(
        self, symbol: str, timeframe: Timeframe | str, before: pd.Timestamp, count: int, *,
        include_forming: bool = False,
    ) -> pd.DataFrame:
        """The last `count` bars of one series with ts < before, oldest first (the `read` frame).

        A look-back counted in bars, not in time: the warm-up of a rolling window needs N prior
        bars, and a weekend or a holiday would make any time span hold fewer.
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        query = BarQuery(
            (sym,), tf, end=bound(before, "before"), include_forming=include_forming, limit=count,
            newest_first=True,
        )
        return self._bulk_read(query, f"read_before({sym} {tf})")

    def _bulk_read(self, query: BarQuery, operation: str) -> pd.DataFrame:
        """`query` through the backend's bulk path as the `read` frame, without a Python object per bar.

        PostgreSQL: ADBC on one of the process's kept connections to this store (bulk_read_postgres.py,
        adbc_pool.py), one statement, so one snapshot. SQLite: the engine's own sqlite3 connection
        (bulk_read_sqlite.py), so the store's WAL and busy-timeout settings hold for reads too.
        """
        if self._is_pg:
            pool = bulk_read_postgres.pool(self._url)
            with translate_errors(self._url, operation):
                table = pool.run(lambda conn: bulk_read_postgres.fetch(conn, query))
        else:
            with self._transaction(operation) as conn:
                table = bulk_read_sqlite.fetch(conn.connection.driver_connection, query)
        return to_frame(table)

    def count(
        self,
        symbol: str | None = None,
        timeframe: Timeframe | str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> int:
        query = select(func.count()).select_from(candles).where(*self._filters(symbol, timeframe, start, end))
        with self._transaction("count") as conn:
            return int(conn.execute(query).scalar_one())

    def row_counts(self) -> pd.DataFrame:
        """One row per stored series: symbol, timeframe, rows, first_ts, last_ts."""
        query = (
            select(
                candles.c.symbol, candles.c.timeframe, func.count(),
                func.min(self._epoch_us(candles.c.ts)), func.max(self._epoch_us(candles.c.ts)),
            )
            .group_by(candles.c.symbol, candles.c.timeframe)
            .order_by(candles.c.symbol, candles.c.timeframe)
        )
        with self._transaction("row_counts") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=["symbol", "timeframe", "rows", "first_ts", "last_ts"])
        frame["rows"] = frame["rows"].astype("int64")
        for col in ("first_ts", "last_ts"):
            frame[col] = us_to_datetimes(frame[col].tolist())
        return frame

    def rows_by_month(self) -> pd.DataFrame:
        """Stored rows per series and UTC month from the ledger (symbol, timeframe, month, rows).

        A few rows per series and month, kept with every write (`month_rows.py`): what retention
        reads to find the series holding old bars, instead of `row_counts()` over every row.
        """
        with self._transaction("rows_by_month") as conn:
            return month_rows.frame(conn)

    def data_ends(self) -> pd.DataFrame:
        """Per series: up to when its newest bar holds data (symbol, timeframe, last_ts, data_end).

        A complete bar holds its whole period; a bar still forming when it was stored (today's
        D1 built at 00:05) holds data only up to when it was stored, so freshness is measured
        from there and not from the end of a period that has not happened yet.
        """
        newest = (
            select(candles.c.symbol, candles.c.timeframe, func.max(candles.c.ts).label("ts"))
            .group_by(candles.c.symbol, candles.c.timeframe)
            .subquery()
        )
        query = select(
            candles.c.symbol, candles.c.timeframe, self._epoch_us(candles.c.ts),
            self._epoch_us(candles.c.ingested_at), candles.c.complete,
        ).join(newest, and_(candles.c.symbol == newest.c.symbol, candles.c.timeframe == newest.c.timeframe,
                            candles.c.ts == newest.c.ts))
        with self._transaction("data_ends") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=["symbol", "timeframe", "last_ts", "ingested_at", "complete"])
        frame["last_ts"] = us_to_datetimes(frame["last_ts"].tolist())
        ingested = us_to_datetimes(frame["ingested_at"].tolist())
        period_end = pd.Series(
            [parse_timeframe(t).bar_end(ts) for t, ts in zip(frame["timeframe"], frame["last_ts"], strict=True)],
            index=frame.index, dtype="datetime64[ns, UTC]",
        )
        complete = frame["complete"].astype(bool)
        frame["data_end"] = period_end.where(complete, pd.Series(ingested).combine(period_end, min))
        return frame[["symbol", "timeframe", "last_ts", "data_end"]]

    def first_bar_ts(self, symbol: str, timeframe: Timeframe | str) -> pd.Timestamp | None:
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        with self._transaction(f"first_bar_ts({sym} {tf})") as conn:
            return conn.execute(select(func.min(candles.c.ts)).where(self._series(sym, tf))).scalar_one()

    def last_bar_ts(self, symbol: str, timeframe: Timeframe | str) -> pd.Timestamp | None:
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        with self._transaction(f"last_bar_ts({sym} {tf})") as conn:
            return conn.execute(select(func.max(candles.c.ts)).where(self._series(sym, tf))).scalar_one()

    def checksum(self, symbol: str | None = None, timeframe: Timeframe | str | None = None) -> str:
        """SHA-256 of candle content (not `source`/`ingested_at`); equal across SQLite and PostgreSQL."""
        order = [candles.c.symbol, candles.c.timeframe]
        if self._is_pg:  # byte order, as SQLite sorts, whatever the database collation
            order = [c.collate("C") for c in order]
        query = (
            select(
                candles.c.symbol, candles.c.timeframe, self._epoch_us(candles.c.ts),
                candles.c.open, candles.c.high, candles.c.low, candles.c.close, candles.c.volume,
                candles.c.vwap, candles.c.trades,
            )
            .where(*self._filters(symbol, timeframe, None, None))
            .order_by(*order, candles.c.ts)
        )
        with self._transaction("checksum") as conn:
            result = conn.execution_options(stream_results=True, yield_per=CHECKSUM_CHUNK_ROWS).execute(query)
            return checksum_chunks(result.partitions())

    def delete_before(
        self, symbol: str, timeframe: Timeframe | str, before: pd.Timestamp, batch_size: int = 50_000
    ) -> int:
        """Delete bars with ts < before, oldest first, one short transaction per batch."""
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        cutoff = bound(before, "before")
        _check_batch_size(batch_size)
        older = and_(self._series(sym, tf), candles.c.ts < cutoff)
        total = 0
        while True:
            with self._transaction(f"delete_before({sym} {tf} {cutoff})", write=True) as conn:
                if self._is_pg:  # the batch's month counts stay what its DELETE removes (month_rows.py)
                    bulk_postgres.lock_series(conn, sym, tf)
                edge = conn.execute(
                    select(candles.c.ts).where(older).order_by(candles.c.ts).offset(batch_size - 1).limit(1)
                ).scalar_one_or_none()
                batch = older if edge is None else and_(self._series(sym, tf), candles.c.ts <= edge)
                months, counts = month_rows.count_where(conn, batch)
                total += int(conn.execute(delete(candles).where(batch)).rowcount)
                month_rows.apply(conn, sym, tf, months, -counts)
            if edge is None:
                return total

    def retire(
        self, timeframe: Timeframe | str, before: pd.Timestamp, symbols: Iterable[str], *, batch_size: int = 50_000
    ) -> dict[str, int]:
        """Retention of one timeframe: remove its bars with ts < before; rows removed per symbol that lost any.

        On partitioned PostgreSQL every month of the timeframe that ends by `before` is dropped
        whole (all its symbols; its rows per symbol taken from the month ledger, not counted), and
        only the rows left below the cutoff, in the month it falls in, are deleted in batches
        (`delete_before`), for the symbols the ledger says have any. Elsewhere (SQLite) each of
        `symbols`, the series of this timeframe holding older bars (`rows_by_month` tells which),
        is trimmed by `delete_before`.
        """
        tf, cutoff = check_timeframe(timeframe), bound(before, "before")
        _check_batch_size(batch_size)
        removed: dict[str, int] = {}
        with self._transaction(f"retire({tf} {cutoff})") as conn:
            partitioned = self._is_partitioned(conn)
            months = partitions.months_before(conn, tf, cutoff) if partitioned else []
        for month in months:
            with self._transaction(f"retire({tf} {cutoff}): drop {month:%Y-%m}", write=True) as conn:
                gone = month_rows.take_month(conn, tf, month) if partitions.drop_month(conn, tf, month) else {}
                for sym, rows in gone.items():
                    removed[sym] = removed.get(sym, 0) + rows
        if partitioned:  # the series with rows left in the month the cutoff falls in, from the ledger
            with self._transaction(f"retire({tf} {cutoff})") as conn:
                left = month_rows.symbols_before(conn, tf, cutoff)
        else:
            left = [check_symbol(s) for s in symbols]
        for sym in sorted(left):  # the ledger knows months: a series may hold none of them before the cutoff
            if rows := self.delete_before(sym, tf, cutoff, batch_size=batch_size):
                removed[sym] = removed.get(sym, 0) + rows
        return removed

    # -- sync status --------------------------------------------------------------------------

    def update_sync_status(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        *,
        status: str,
        last_bar_ts: pd.Timestamp | None = None,
        rows: int | None = None,
        error: str | None = None,
    ) -> None:
        """Upsert one series' status; `last_sync_at` is now.

        `last_bar_ts` and `rows` keep their stored values when not given (a `running` update
        must not erase what the last good sync recorded); `error` is always replaced, so an `ok`
        clears it.
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        if status not in SYNC_STATUSES:
            raise ValueError(f"sync status must be one of {', '.join(SYNC_STATUSES)}, got {status!r}")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0):
            raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
        last = None if last_bar_ts is None else bound(last_bar_ts, "last_bar_ts")
        now = pd.Timestamp.now(tz="UTC")
        values: dict[str, Any] = {
            "symbol": sym, "timeframe": tf, "status": status, "error": error,
            "last_sync_at": now, "updated_at": now,
        }
        if last is not None:
            values["last_bar_ts"] = last
        if rows is not None:
            values["rows"] = int(rows)
        dialect_insert = postgresql.insert if self._is_pg else sqlite.insert
        stmt = dialect_insert(sync_status).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sync_status.c.symbol, sync_status.c.timeframe],
            set_={k: stmt.excluded[k] for k in values if k not in ("symbol", "timeframe")},
        )
        with self._transaction(f"update_sync_status({sym} {tf})", write=True) as conn:
            conn.execute(stmt)

    def sync_status(self) -> pd.DataFrame:
        query = select(*(sync_status.c[c] for c in SYNC_COLUMNS)).order_by(
            sync_status.c.symbol, sync_status.c.timeframe
        )
        with self._transaction("sync_status") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=list(SYNC_COLUMNS))
        for col in ("last_sync_at", "last_bar_ts", "updated_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
        frame["rows"] = frame["rows"].astype("int64")
        return frame

