"""Reading one page of a series for `GET /candles`: the service's one read of candles.

`load_bars` asks `CandleStore.read` for the page in one query: the bars after the cursor, at
most one more than the page holds (that extra bar says whether the range goes on). The store
reads it through its bulk path (ADBC into Arrow on PostgreSQL, store/bulk_read_postgres.py; a
numpy record array on SQLite), the one `massive_pipeline.read_candles` uses too, so a
50,000-bar page costs one index range scan and no Python object per bar, however long the
market was closed in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore


@dataclass(frozen=True)
class BarPage:
    """Up to `limit` bars, and whether the range holds more after the last of them."""

    bars: pd.DataFrame
    more: bool

    @property
    def last_ts(self) -> pd.Timestamp | None:
        return None if self.bars.empty else pd.Timestamp(self.bars["ts"].iloc[-1])


def load_bars(
    store: CandleStore,
    symbol: str,
    timeframe: Timeframe,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    limit: int,
    after: pd.Timestamp | None = None,
    *,
    include_forming: bool = False,
) -> BarPage:
    """Bars of one series with start <= ts < end and ts > after, oldest first, at most `limit`.

    `start`/`end` None: from the first stored bar / to the last. Forming bars (`complete` false)
    only with `include_forming`.
    """
    bars = store.read(
        symbol, timeframe, start, end, include_forming=include_forming, after=after, limit=limit + 1
    )
    return BarPage(bars.iloc[:limit].reset_index(drop=True), len(bars) > limit)
