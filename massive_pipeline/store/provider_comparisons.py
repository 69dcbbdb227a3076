"""`CandleStore` methods for `provider_comparisons`: one row per cross-checked pair, timeframe and partition.

The check runs again whenever the partition is materialized (every refresh of today's), so a row is
upserted, never appended: the table holds the latest verdict of each partition, and the newest
partition of a pair is where it stands now (`latest_provider_comparisons`, what `status` prints).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store.schema import PARTITION_LENGTH, provider_comparisons
from massive_pipeline.store.validate import check_symbol, check_timeframe

_KEY = ("symbol", "other_symbol", "timeframe", "partition")
PROVIDER_COMPARISON_FIELDS: tuple[str, ...] = tuple(
    c.name for c in provider_comparisons.columns if c.name not in _KEY and c.name != "compared_at"
)


def _value(value: Any) -> Any:
    """numpy scalars as Python ones and NaN as null, so either driver takes them."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _frame(rows: list[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c.name for c in provider_comparisons.columns])
    frame["compared_at"] = pd.to_datetime(frame["compared_at"], utc=True).dt.as_unit("ns")
    for col in ("bars_compared", "bars_over_tolerance"):
        frame[col] = frame[col].astype("int64")
    return frame


class ProviderComparisonsMixin:
    """Methods of `CandleStore` for `provider_comparisons`."""

    dialect: str

    def _transaction(self, operation: str, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def record_provider_comparison(
        self, symbol: str, other_symbol: str, timeframe: Timeframe | str, partition: str, *,
        compared_at: pd.Timestamp | None = None, **fields: Any,
    ) -> None:
        """Upsert the comparison of `symbol` with `other_symbol` over one partition
        (`PROVIDER_COMPARISON_FIELDS`, all required; the statistics may be None when no bar was common)."""
        sym, other, tf = check_symbol(symbol), check_symbol(other_symbol), check_timeframe(timeframe)
        if not isinstance(partition, str) or not partition or len(partition) > PARTITION_LENGTH:
            raise ValueError(f"partition must be a key of 1 to {PARTITION_LENGTH} characters, got {partition!r}")
        if set(fields) != set(PROVIDER_COMPARISON_FIELDS):
            wrong = sorted(set(fields) ^ set(PROVIDER_COMPARISON_FIELDS))
            raise ValueError(f"record_provider_comparison: fields must be {list(PROVIDER_COMPARISON_FIELDS)}; "
                             f"unknown or missing: {wrong}")
        values = {
            "symbol": sym, "other_symbol": other, "timeframe": tf, "partition": partition,
            **{k: _value(v) for k, v in fields.items()},
            "compared_at": compared_at if compared_at is not None else pd.Timestamp.now(tz="UTC"),
        }
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(provider_comparisons).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY), set_={k: stmt.excluded[k] for k in values if k not in _KEY}
        )
        with self._transaction(f"record_provider_comparison({sym} {other} {tf} {partition})", write=True) as conn:
            conn.execute(stmt)

    def provider_comparisons(
        self, symbol: str | None = None, other_symbol: str | None = None, timeframe: Timeframe | str | None = None
    ) -> pd.DataFrame:
        """Recorded comparisons by pair, timeframe and partition."""
        t = provider_comparisons
        query = select(t).order_by(t.c.symbol, t.c.other_symbol, t.c.timeframe, t.c.partition)
        if symbol is not None:
            query = query.where(t.c.symbol == check_symbol(symbol))
        if other_symbol is not None:
            query = query.where(t.c.other_symbol == check_symbol(other_symbol))
        if timeframe is not None:
            query = query.where(t.c.timeframe == check_timeframe(timeframe))
        with self._transaction("provider_comparisons") as conn:
            return _frame(conn.execute(query).all())

    def latest_provider_comparisons(self) -> pd.DataFrame:
        """Per pair and timeframe, the comparison of the newest partition (keys are ISO dates, so
        the greatest key is the latest window)."""
        t = provider_comparisons
        rank = func.row_number().over(
            partition_by=(t.c.symbol, t.c.other_symbol, t.c.timeframe), order_by=t.c.partition.desc()
        )
        ranked = select(t, rank.label("rank")).subquery()
        query = (
            select(*(ranked.c[c.name] for c in t.columns))
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.symbol, ranked.c.other_symbol, ranked.c.timeframe)
        )
        with self._transaction("latest_provider_comparisons") as conn:
            return _frame(conn.execute(query).all())
