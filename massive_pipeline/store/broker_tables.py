"""`CandleStore` methods for the broker comparison tables: imported export bars and the results.

A broker's export is imported per file: its bars are keyed by the file's content hash, so the
same file imported again (the sensor seeing it touched, a user re-running the command) replaces
exactly its own rows in one transaction instead of doubling them, and two exports that overlap
stay two files, each comparable on its own.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store.schema import BROKER_LENGTH, OFFSET_RULES, broker_bars, broker_comparisons
from massive_pipeline.store.validate import check_symbol, check_timeframe

BROKER_BAR_COLUMNS: tuple[str, ...] = (
    "server_time",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "real_volume",
    "spread",
)
COMPARISON_FIELDS: tuple[str, ...] = tuple(
    c.name for c in broker_comparisons.columns if c.name not in ("id", "broker", "symbol", "timeframe")
)
_INSERT_BATCH = 2000  # rows per INSERT: 15 parameters a row stays under SQLite's 32,766


def check_broker(broker: Any) -> str:
    """A broker name as stored and used in asset keys: lower-case letters, digits, `_`."""
    if (
        not isinstance(broker, str)
        or not broker
        or len(broker) > BROKER_LENGTH
        or not all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "_") for ch in broker)
    ):
        raise ValueError(
            f"broker name must be 1 to {BROKER_LENGTH} lower-case letters, digits or '_', got {broker!r}"
        )
    return broker


def _optional(values: pd.Series) -> list[float | None]:
    return [None if pd.isna(v) else float(v) for v in values]


class BrokerTablesMixin:
    """Methods of `CandleStore` for `broker_bars` and `broker_comparisons`."""

    def _transaction(self, operation: str, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def replace_broker_file(
        self,
        broker: str,
        symbol: str,
        timeframe: Timeframe | str,
        file_sha256: str,
        file_name: str,
        bars: pd.DataFrame,
    ) -> int:
        """Store the bars of one export file (`BROKER_BAR_COLUMNS`), replacing the rows an earlier
        import of the same file (same content hash) left; returns the rows written."""
        name, sym, tf = check_broker(broker), check_symbol(symbol), check_timeframe(timeframe)
        missing = set(BROKER_BAR_COLUMNS) - set(bars.columns)
        if missing:
            raise ValueError(f"replace_broker_file: bars lack column(s) {sorted(missing)}")
        now = pd.Timestamp.now(tz="UTC")
        fixed = {
            "broker": name,
            "symbol": sym,
            "timeframe": tf,
            "file_sha256": file_sha256,
            "file_name": file_name,
            "imported_at": now,
        }
        columns = {
            "server_time": list(
                pd.to_datetime(bars["server_time"]).dt.tz_localize(None).dt.tz_localize("UTC")
            ),
            "ts": list(pd.to_datetime(bars["ts"], utc=True)),
            **{c: bars[c].astype("float64").tolist() for c in ("open", "high", "low", "close", "volume")},
            "real_volume": _optional(bars["real_volume"]),
            "spread": _optional(bars["spread"]),
        }
        rows = [
            {**fixed, **dict(zip(columns, values, strict=True))}
            for values in zip(*columns.values(), strict=True)
        ]
        where = (
            broker_bars.c.broker == name,
            broker_bars.c.symbol == sym,
            broker_bars.c.timeframe == tf,
            broker_bars.c.file_sha256 == file_sha256,
        )
        with self._transaction(f"replace_broker_file({name} {sym} {tf} {file_name})", write=True) as conn:
            conn.execute(delete(broker_bars).where(*where))
            for i in range(0, len(rows), _INSERT_BATCH):
                conn.execute(insert(broker_bars), rows[i : i + _INSERT_BATCH])
        return len(rows)

    def broker_bars(
        self, broker: str, symbol: str, timeframe: Timeframe | str, file_sha256: str | None = None
    ) -> pd.DataFrame:
        """Imported bars of one broker series (of one file when `file_sha256` is given), by server time."""
        name, sym, tf = check_broker(broker), check_symbol(symbol), check_timeframe(timeframe)
        query = (
            select(broker_bars)
            .where(broker_bars.c.broker == name, broker_bars.c.symbol == sym, broker_bars.c.timeframe == tf)
            .order_by(broker_bars.c.file_sha256, broker_bars.c.server_time)
        )
        if file_sha256 is not None:
            query = query.where(broker_bars.c.file_sha256 == file_sha256)
        with self._transaction(f"broker_bars({name} {sym} {tf})") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in broker_bars.columns])
        for col in ("server_time", "ts", "imported_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
        frame["server_time"] = frame["server_time"].dt.tz_localize(None)
        return frame

    def record_broker_comparison(
        self, broker: str, symbol: str, timeframe: Timeframe | str, **fields: Any
    ) -> int:
        """Append one comparison (`COMPARISON_FIELDS`; `details` may be a dict, kept as JSON); returns its id."""
        name, sym, tf = check_broker(broker), check_symbol(symbol), check_timeframe(timeframe)
        unknown = set(fields) - set(COMPARISON_FIELDS)
        if unknown:
            raise ValueError(f"record_broker_comparison: unknown field(s) {sorted(unknown)}")
        if fields.get("offset_rule") not in OFFSET_RULES:
            raise ValueError(
                f"offset_rule must be one of {', '.join(OFFSET_RULES)}, got {fields.get('offset_rule')!r}"
            )
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in fields.items()}
        if not isinstance(row.get("details", ""), str):
            row["details"] = json.dumps(row["details"], sort_keys=True, default=str)
        row.setdefault("compared_at", pd.Timestamp.now(tz="UTC"))
        with self._transaction(f"record_broker_comparison({name} {sym} {tf})", write=True) as conn:
            stmt = insert(broker_comparisons).values(broker=name, symbol=sym, timeframe=tf, **row)
            return int(conn.execute(stmt.returning(broker_comparisons.c.id)).scalar_one())

    def broker_comparisons(self, broker: str | None = None, symbol: str | None = None) -> pd.DataFrame:
        """Recorded comparisons, oldest first; `details` parsed back into a dict."""
        query = select(broker_comparisons).order_by(broker_comparisons.c.id)
        if broker is not None:
            query = query.where(broker_comparisons.c.broker == check_broker(broker))
        if symbol is not None:
            query = query.where(broker_comparisons.c.symbol == check_symbol(symbol))
        with self._transaction("broker_comparisons") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in broker_comparisons.columns])
        for col in ("period_start", "period_end", "compared_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        frame["details"] = [json.loads(text) for text in frame["details"]]
        return frame
