"""What is already stored, per series and partition: where a bootstrap resumes.

A partition counts as stored when both records agree: Dagster holds a materialization of it
(the candle assets record one per partition once its bars are written and checked) and the
candle store's bars of the series span its window. The first alone would skip a window whose
bars retention or a fresh database removed; the second alone cannot tell a filled weekend from a
hole. A window before the first stored bar still counts when the market calendar expects no bar
in it (a forex Saturday at the edge), so a resumed bootstrap never spends a request on a closed day.

The partitions at the end count only while the series is fresh (`verify`'s rule: it lags its
market by no more than its freshness limit, in trading time): a lagging series has the partitions
past its data fetched again, the only way the partitioned assets bring it up to date; a run killed
a minute ago, or an index's D1 before today's open, costs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from dagster import AssetKey, DagsterInstance

from massive_pipeline.bootstrap.keys import key_window
from massive_pipeline.core.asset_keys import candle_key_path
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.settings import FRESHNESS_LIMITS
from massive_pipeline.quality.verify import trading_lag
from massive_pipeline.store import CandleStore


class StoredCoverage:
    """The stored partitions of each series, from one reading of the store's extents."""

    def __init__(self, instance: DagsterInstance | None, store: CandleStore | None) -> None:
        self._instance = instance
        self._extents: dict[tuple[str, str], tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]] = {}
        if store is not None:
            ends = {(r.symbol, r.timeframe): pd.Timestamp(r.data_end) for r in store.data_ends().itertuples(index=False)}
            for r in store.row_counts().itertuples(index=False):
                key = (r.symbol, r.timeframe)
                self._extents[key] = (pd.Timestamp(r.first_ts), pd.Timestamp(r.last_ts), ends.get(key, r.last_ts))

    def stored(self, spec: SymbolSpec, timeframe: Timeframe, keys: Iterable[str], now: pd.Timestamp) -> set[str]:
        """The partitions among `keys` that need no run."""
        extent = self._extents.get((spec.symbol, timeframe.value))
        if self._instance is None or extent is None:
            return set()
        materialized = self._instance.get_materialized_partitions(AssetKey(candle_key_path(spec.symbol, timeframe)))
        first, last, data_end = extent
        limit = FRESHNESS_LIMITS[timeframe]
        fresh = trading_lag(spec, data_end, now, limit) <= limit
        out: set[str] = set()
        for key in keys:
            if key not in materialized:
                continue
            start, end = key_window(spec, timeframe, key)
            if end <= first:  # before the stored bars: only a window the market never trades in
                stored = len(spec.market_calendar.expected_bars(start, min(end, now), timeframe)) == 0
            elif start > last:  # after them: a fresh series missed nothing (today before the open)
                stored = fresh
            else:
                stored = fresh or end <= data_end
            if stored:
                out.add(key)
        return out

