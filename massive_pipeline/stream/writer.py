"""A closed kline into the candle store, through the same path a REST materialization takes.

Validation first (a bar with high < low goes to `rejected_candles`, as in the assets), then
`CandleStore.write_window` over the kline's own minute [t, t + 1 min): the merge replaces a bar
with the same start and keeps every other stored bar, so a stream bar can never remove stored
history, and a later REST refresh of the day that brings the same bar changes nothing (the values
parse identically; no revision is recorded). Only closed 1-minute klines are written: an open
kline's values are still moving, and the REST refresh marks such bars forming anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.validation import quarantine, validate_bars
from massive_pipeline.store import CandleStore, WriteResult
from massive_pipeline.stream.events import Kline

log = logging.getLogger(__name__)
SOURCE = "binance_stream"
INTERVAL = "1m"


@dataclass(frozen=True)
class Written:
    """What writing one kline did: the catalog symbol, the store's result, rows rejected."""

    symbol: str
    kline: Kline
    result: WriteResult | None
    rejected: int


class KlineSkipped(ValueError):
    """A kline the writer does not store (open, another interval, an unmapped symbol); one line."""


class KlineWriter:
    """Writes closed 1-minute klines of the mapped symbols ({Binance symbol: catalog symbol}).

    `now` is the wall clock; a closed kline is stored `complete` even when the clock lags the
    exchange's close by a few milliseconds (Binance said it closed), so `now` is at least its end.
    """

    def __init__(
        self, store: CandleStore, symbols: Mapping[str, str], *,
        now: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC"),
    ) -> None:
        self.store = store
        self.symbols = dict(symbols)
        self._now = now

    def warm_up(self) -> None:
        """Build the validation schema once before the first close (it takes seconds the first time,
        which would otherwise delay the first kline by as much)."""
        sample = Kline(symbol="-", interval=INTERVAL, open_ms=0, close_ms=59_999, event_ms=0, open=1.0, high=1.0,
                       low=1.0, close=1.0, volume=0.0, quote_volume=None, trades=0, closed=True)
        validate_bars(sample.frame(), Timeframe.M1, "warm-up")

    def check(self, kline: Kline) -> str:
        """The catalog symbol to write `kline` to, or `KlineSkipped` saying why not."""
        if not kline.closed:
            raise KlineSkipped(f"{kline.symbol} kline {kline.ts:%Y-%m-%d %H:%M} is still open")
        if kline.interval != INTERVAL:
            raise KlineSkipped(f"{kline.symbol} kline has interval {kline.interval!r}, not {INTERVAL!r}")
        symbol = self.symbols.get(kline.symbol)
        if symbol is None:
            raise KlineSkipped(f"{kline.symbol} is not one of the streamed symbols ({', '.join(self.symbols)})")
        return symbol

    def write(self, kline: Kline) -> Written:
        symbol = self.check(kline)
        label = f"stream {symbol} M1 {kline.ts:%Y-%m-%d %H:%M}"
        checked = validate_bars(kline.frame(), Timeframe.M1, label)
        rejected = quarantine(self.store, symbol, Timeframe.M1, checked, None)
        if rejected:
            log.warning("%s: rejected (%s)", label, "; ".join(checked.reason_counts()))
            return Written(symbol, kline, None, rejected)
        result = self.store.write_window(
            symbol, Timeframe.M1, kline.ts, kline.end, checked.valid, source=SOURCE,
            now=max(self._now(), kline.end),
        )
        return Written(symbol, kline, result, 0)
