"""What `GET /symbols` and `GET /symbols/{symbol}` say about an instrument.

The catalog entry as configured, and per timeframe the stored series: where its bars come from
(the base fetch, a direct fetch, or derived), first and last bar, row count, and freshness judged
against the market's calendar (`operations/freshness.py`, the judgement `status` prints), so a
forex series is `closed`, not `stale`, on a Saturday.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.operations.freshness import assess
from massive_pipeline.service.records import iso, seconds


def catalog_entry(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "ticker": spec.ticker,
        "asset_class": spec.asset_class.value,
        "priority": spec.priority.value,
        "calendar": spec.calendar,
        "start": spec.start.isoformat(),
        "base_timeframe": spec.base_timeframe.value,
        "fetch": [tf.value for tf in spec.fetch],
        "precision": spec.precision,
        "description": spec.description,
        "timeframes": [tf.value for tf in spec.timeframes],
    }


def series_of(spec: SymbolSpec, row_counts: pd.DataFrame, now: pd.Timestamp) -> list[dict[str, Any]]:
    """One summary per timeframe of `spec`, from `CandleStore.row_counts()` (one query for all)."""
    mine = row_counts[row_counts["symbol"] == spec.symbol]
    by_tf = {row.timeframe: row for row in mine.itertuples(index=False)}
    out = []
    for tf in spec.timeframes:
        row = by_tf.get(tf.value)
        first = None if row is None else pd.Timestamp(row.first_ts)
        last = None if row is None else pd.Timestamp(row.last_ts)
        fresh = assess(spec, tf, last, now)
        out.append(
            {
                "timeframe": tf.value,
                "source": spec.timeframe_source(tf),
                "rows": 0 if row is None else int(row.rows),
                "first_bar": iso(first),
                "last_bar": iso(last),
                "freshness": {
                    "label": fresh.label,
                    "stale": fresh.stale if last is not None else None,
                    "market_open": fresh.market_open,
                    "lag_seconds": seconds(fresh.lag),
                    "age_seconds": seconds(fresh.age),
                    "limit_seconds": seconds(fresh.limit),
                },
            }
        )
    return out


def symbol_view(spec: SymbolSpec, row_counts: pd.DataFrame, now: pd.Timestamp) -> dict[str, Any]:
    return {**catalog_entry(spec), "series": series_of(spec, row_counts, now)}
