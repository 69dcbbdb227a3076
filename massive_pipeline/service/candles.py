"""Reading one page of a series for `GET /candles`: the one function to swap for a faster reader.

`load_bars` is the service's only read of candles. It goes through `CandleStore.read`, which has
no row limit, so it reads in windows sized to the page: bars of a timeframe are at least one bar
apart, so a window of `n` bar lengths holds at most `n` bars, and a page of `limit` bars costs one
read unless the market was closed for part of the window (then the window doubles until the page
is full or the range ends). When `massive_pipeline.read_candles` lands, only this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore

# Bars sit on whole milliseconds: the first bar after `after` starts at least this much later.
_STEP = pd.Timedelta(milliseconds=1)


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
    first, last = store.first_bar_ts(symbol, timeframe), store.last_bar_ts(symbol, timeframe)
    if first is None or last is None:  # nothing stored: an empty frame with the read's columns and types
        return BarPage(store.read(symbol, timeframe, start, end, include_forming=include_forming), False)
    lo = max(
        b for b in (pd.Timestamp(first), start, None if after is None else after + _STEP) if b is not None
    )
    stop = pd.Timestamp(last) + _STEP
    hi = stop if end is None else min(end, stop)
    if lo >= hi:  # an empty range (`ts >= lo and ts < lo`): the read's columns and types, no rows
        return BarPage(store.read(symbol, timeframe, lo, lo), False)
    span = timeframe.delta * (limit + 1)
    chunks: list[pd.DataFrame] = []
    have = 0
    while True:
        upto = min(hi, lo + span)
        chunk = store.read(symbol, timeframe, lo, upto, include_forming=include_forming)
        chunks.append(chunk)
        have += len(chunk)
        lo, span = upto, span * 2
        if lo >= hi or have > limit:
            break
    bars = (
        pd.concat([c for c in chunks if len(c)] or chunks[:1], ignore_index=True)
        if len(chunks) > 1
        else chunks[0]
    )
    return BarPage(bars.iloc[:limit].reset_index(drop=True), len(bars) > limit)
