"""Helpers for the tables around the candles: rejected bars, data gaps and quote snapshots.

Small volumes (a few rows per run), so plain parameterized statements are enough here; the bulk
machinery is reserved for `candles`.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.store.schema import GAP_STATUSES, data_gaps, rejected_candles, snapshots
from massive_pipeline.store.validate import check_symbol, check_timeframe

_REJECT_VALUES = ("open", "high", "low", "close", "volume", "vwap", "trades")
SNAPSHOT_FIELDS: tuple[str, ...] = (
    "bid", "ask", "spread", "last", "day_open", "day_high", "day_low", "day_close", "day_volume",
)


# Rows per upsert statement: SQLite allows 32,766 bound parameters, a reject row binds 17.
_REJECT_BATCH = 1000


def reject_fingerprint(row: dict[str, Any]) -> str:
    """sha256 of a reject's bar start, values and reason: the same on SQLite and PostgreSQL and
    for the same bar delivered again, because it is computed from the values before either
    database sees them (NaN/NA/NaT as null, whole numbers as integers so 5 and 5.0 agree, other
    floats by their exact hex form, the bar start in UTC nanoseconds)."""

    def part(value: Any) -> str:
        value = _clean(value)
        if value is None:
            return "null"
        if isinstance(value, pd.Timestamp | datetime):
            return str(to_utc(value, "ts").value)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int | float):
            number = float(value)
            return number.hex() if not number.is_integer() or abs(number) >= 2**53 else str(int(number))
        return repr(value)

    fields = [part(row.get("ts")), *(part(row.get(c)) for c in _REJECT_VALUES), str(row["reason"])]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def _reject_row(rec: dict[str, Any]) -> dict[str, Any]:
    """The reason, bar start and values of one reject, as stored and fingerprinted."""
    return {"reason": str(rec["reason"]), "ts": _clean(rec.get("ts")), **{c: _clean(rec.get(c)) for c in _REJECT_VALUES}}


def reject_fingerprints(rejects: pd.DataFrame) -> list[str]:
    """`reject_fingerprint` of each row of a rejects frame, as `record_rejects` computes it."""
    return [reject_fingerprint(_reject_row(rec)) for rec in rejects.to_dict("records")]


def _clean(value: Any) -> Any:
    """NaN/NA/NaT to None, numpy scalars to Python ones, so any driver accepts the value."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") and not isinstance(value, pd.Timestamp) else value


def _frame(rows: list[Any], table: Table, time_columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c.name for c in table.columns])
    for col in time_columns:
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
    return frame


class SideTablesMixin:
    """Methods of `CandleStore` for `rejected_candles`, `data_gaps` and `snapshots`."""

    dialect: str

    def _transaction(self, operation: str, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # -- rejected candles ---------------------------------------------------------------------

    def record_rejects(
        self, symbol: str, timeframe: Timeframe | str, rejects: pd.DataFrame, *, run_id: str | None = None
    ) -> int:
        """Keep bars that failed validation with their `reason` column, counting repeats.

        The provider sends the same bad bar on every refresh of its day (288 times a day at a
        5-minute cadence), so each reject is identified by `reject_fingerprint` (ts, values,
        reason) within its series: a new one is inserted with `times_seen` 1, one seen before gets
        `times_seen` + 1, `last_seen_at` now and `last_run_id` this run. Identical rejects within
        one call are one row seen that many times. One upsert statement per batch of rows.

        Returns how many rows were *new* (first seen in this call); rows seen again are counted in
        the table, not in the return value.
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        if "reason" not in rejects.columns:
            raise ValueError("record_rejects: rejects need a 'reason' column saying why each bar was refused")
        if rejects["reason"].isna().any():
            raise ValueError("record_rejects: every reject needs a reason; some are missing")
        now = pd.Timestamp.now(tz="UTC")
        by_fingerprint: dict[str, dict[str, Any]] = {}
        for rec in rejects.to_dict("records"):
            row = _reject_row(rec)
            fingerprint = reject_fingerprint(row)
            if fingerprint in by_fingerprint:
                by_fingerprint[fingerprint]["times_seen"] += 1
                continue
            by_fingerprint[fingerprint] = {
                "symbol": sym, "timeframe": tf, "run_id": run_id, "rejected_at": now, **row,
                "fingerprint": fingerprint, "times_seen": 1, "last_seen_at": now, "last_run_id": run_id,
            }
        rows = list(by_fingerprint.values())
        if not rows:
            return 0
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        new = 0
        with self._transaction(f"record_rejects({sym} {tf})", write=True) as conn:
            for i in range(0, len(rows), _REJECT_BATCH):
                batch = rows[i : i + _REJECT_BATCH]
                stmt = dialect_insert(rejected_candles).values(batch)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["symbol", "timeframe", "fingerprint"],
                    set_={
                        "times_seen": rejected_candles.c.times_seen + stmt.excluded.times_seen,
                        "last_seen_at": stmt.excluded.last_seen_at,
                        "last_run_id": stmt.excluded.last_run_id,
                    },
                ).returning(rejected_candles.c.fingerprint, rejected_candles.c.times_seen)
                # a row is new when its count is this call's alone
                new += sum(
                    1 for fp, seen in conn.execute(stmt).all() if int(seen) == by_fingerprint[fp]["times_seen"]
                )
        return new

    def rejected(
        self,
        symbol: str | None = None,
        timeframe: Timeframe | str | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Quarantined bars, oldest first, with `times_seen`, `last_seen_at`, `last_run_id`;
        `start`/`end` select bar starts in [start, end)."""
        query = select(rejected_candles).order_by(rejected_candles.c.id)
        if symbol is not None:
            query = query.where(rejected_candles.c.symbol == check_symbol(symbol))
        if timeframe is not None:
            query = query.where(rejected_candles.c.timeframe == check_timeframe(timeframe))
        if start is not None:
            query = query.where(rejected_candles.c.ts >= to_utc(start, "start"))
        if end is not None:
            query = query.where(rejected_candles.c.ts < to_utc(end, "end"))
        with self._transaction("rejected") as conn:
            rows = conn.execute(query).all()
        frame = _frame(rows, rejected_candles, ("ts", "rejected_at", "last_seen_at"))
        frame["trades"] = frame["trades"].astype("Int64")
        frame["times_seen"] = frame["times_seen"].astype("int64")
        return frame

    # -- data gaps ----------------------------------------------------------------------------

    def record_gaps(self, symbol: str, timeframe: Timeframe | str, gaps: pd.DataFrame) -> int:
        """Record gaps (gap_start, gap_end, candles_missing) as `detected`; known ones are left alone.

        Returns how many were new.
        """
        sym, tf = check_symbol(symbol), check_timeframe(timeframe)
        missing = {"gap_start", "gap_end", "candles_missing"} - set(gaps.columns)
        if missing:
            raise ValueError(f"record_gaps: gaps lack column(s) {sorted(missing)}")
        now = pd.Timestamp.now(tz="UTC")
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        new = 0
        with self._transaction(f"record_gaps({sym} {tf})", write=True) as conn:
            for rec in gaps.to_dict("records"):
                start, end = to_utc(rec["gap_start"], "gap_start"), to_utc(rec["gap_end"], "gap_end")
                if end <= start:
                    raise ValueError(f"record_gaps: gap_end {end} must be after gap_start {start}")
                stmt = dialect_insert(data_gaps).values(
                    symbol=sym, timeframe=tf, gap_start=start, gap_end=end,
                    candles_missing=int(rec["candles_missing"]), status="detected", detected_at=now, attempts=0,
                ).on_conflict_do_nothing(index_elements=["symbol", "timeframe", "gap_start"])
                new += len(conn.execute(stmt.returning(data_gaps.c.id)).all())
        return new

    def gaps(
        self, symbol: str | None = None, timeframe: Timeframe | str | None = None, status: str | None = None
    ) -> pd.DataFrame:
        query = select(data_gaps).order_by(data_gaps.c.symbol, data_gaps.c.timeframe, data_gaps.c.gap_start)
        if symbol is not None:
            query = query.where(data_gaps.c.symbol == check_symbol(symbol))
        if timeframe is not None:
            query = query.where(data_gaps.c.timeframe == check_timeframe(timeframe))
        if status is not None:
            query = query.where(data_gaps.c.status == _gap_status(status))
        with self._transaction("gaps") as conn:
            rows = conn.execute(query).all()
        return _frame(rows, data_gaps, ("gap_start", "gap_end", "detected_at", "filled_at"))

    def set_gap_status(self, gap_id: int, status: str) -> None:
        """Move a gap along detected → filling → filled | unfillable.

        `filling` counts an attempt; `filled` stamps `filled_at`.
        """
        values: dict[str, Any] = {"status": _gap_status(status)}
        if status == "filling":
            values["attempts"] = data_gaps.c.attempts + 1
        if status == "filled":
            values["filled_at"] = pd.Timestamp.now(tz="UTC")
        with self._transaction(f"set_gap_status({gap_id})", write=True) as conn:
            done = conn.execute(update(data_gaps).where(data_gaps.c.id == int(gap_id)).values(**values)).rowcount
        if not done:
            raise KeyError(f"no data gap with id {gap_id}")

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(self, symbol: str, ticker: str, *, quote_ts: Any = None, **fields: float | None) -> None:
        """Append one quote snapshot; `fields` are among `SNAPSHOT_FIELDS`."""
        sym = check_symbol(symbol)
        unknown = set(fields) - set(SNAPSHOT_FIELDS)
        if unknown:
            raise ValueError(f"save_snapshot: unknown field(s) {sorted(unknown)}; known {list(SNAPSHOT_FIELDS)}")
        row = {
            "symbol": sym, "ticker": ticker, "fetched_at": pd.Timestamp.now(tz="UTC"),
            "quote_ts": None if quote_ts is None else to_utc(quote_ts, "quote_ts"),
            **{k: _clean(v) for k, v in fields.items()},
        }
        with self._transaction(f"save_snapshot({sym})", write=True) as conn:
            conn.execute(insert(snapshots).values(**row))

    def latest_snapshots(self) -> pd.DataFrame:
        """The newest snapshot of each symbol."""
        rank = func.row_number().over(
            partition_by=snapshots.c.symbol, order_by=(snapshots.c.fetched_at.desc(), snapshots.c.id.desc())
        )
        ranked = select(snapshots, rank.label("rank")).subquery()
        query = (
            select(*(ranked.c[c.name] for c in snapshots.columns))
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.symbol)
        )
        with self._transaction("latest_snapshots") as conn:
            rows = conn.execute(query).all()
        return _frame(rows, snapshots, ("quote_ts", "fetched_at"))


def _gap_status(status: str) -> str:
    if status not in GAP_STATUSES:
        raise ValueError(f"gap status must be one of {', '.join(GAP_STATUSES)}, got {status!r}")
    return status

