"""The provider's corrections of stored bars, kept in `candle_revisions`.

Daily values are recalculated after the close and minute bars can be re-sent when late trades
arrive (massive-api.md). A silent overwrite would change what a model was trained on without a
trace; here every changed complete bar keeps its old and new OHLCV with the run that saw it, so a
user can ask how much the provider corrected, per symbol and day.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.store.bars import BarArrays
from massive_pipeline.store.schema import candle_revisions
from massive_pipeline.store.validate import check_symbol, check_timeframe
from massive_pipeline.store.window_merge import VALUE_FIELDS, MergePlan, StoredWindow

REVISION_COLUMNS: tuple[str, ...] = (
    "symbol", "timeframe", "ts",
    *(f"old_{f}" for f in VALUE_FIELDS), *(f"new_{f}" for f in VALUE_FIELDS),
    "max_rel_change", "run_id", "detected_at",
)


def revision_frame(
    symbol: str, timeframe: str, stored: StoredWindow, answer: BarArrays, plan: MergePlan,
    run_id: str | None, detected_at: pd.Timestamp,
) -> pd.DataFrame:
    """One row per revised bar, in `REVISION_COLUMNS` order."""
    s, a = plan.revised_stored, plan.revised_answer
    values = answer.values()
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timeframe": timeframe,
            "ts": pd.to_datetime(stored.ts_ns[s], utc=True),
            **{f"old_{f}": stored.values[f][s] for f in VALUE_FIELDS},
            **{f"new_{f}": values[f][a] for f in VALUE_FIELDS},
            "max_rel_change": plan.rel_change,
            "run_id": run_id,
            "detected_at": detected_at,
        },
        columns=list(REVISION_COLUMNS),
    )


def insert_revisions(conn: Connection, frame: pd.DataFrame) -> None:
    """Insert revision rows inside the caller's transaction (the same one that writes the bars)."""
    if not len(frame):
        return
    rows = frame.to_dict("records")
    for row in rows:
        row["ts"] = pd.Timestamp(row["ts"])
        for key, value in row.items():
            if isinstance(value, np.floating):
                row[key] = float(value)
    conn.execute(insert(candle_revisions), rows)


class RevisionsMixin:
    """`CandleStore.revisions()`: read what the provider corrected."""

    def _transaction(self, operation: str, *, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def revisions(
        self,
        symbols: list[str] | None = None,
        timeframes: list[Timeframe | str] | None = None,
        since: Any = None,
    ) -> pd.DataFrame:
        """Revisions detected at or after `since`, oldest first, with old and new OHLCV."""
        query = select(*(candle_revisions.c[c] for c in REVISION_COLUMNS))
        if symbols:
            query = query.where(candle_revisions.c.symbol.in_([check_symbol(s) for s in symbols]))
        if timeframes:
            query = query.where(candle_revisions.c.timeframe.in_([check_timeframe(t) for t in timeframes]))
        if since is not None:
            query = query.where(candle_revisions.c.detected_at >= to_utc(since, "since"))
        query = query.order_by(
            candle_revisions.c.detected_at, candle_revisions.c.symbol, candle_revisions.c.timeframe,
            candle_revisions.c.ts,
        )
        with self._transaction("revisions") as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame(rows, columns=list(REVISION_COLUMNS))
        for col in ("ts", "detected_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True).dt.as_unit("ns")
        return frame
