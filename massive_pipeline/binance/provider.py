"""`BarProvider` over Binance klines, the second source beside Massive (DESIGN §1.13)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from massive_pipeline.binance.client import BinanceClient, KlineFetch
from massive_pipeline.binance.intervals import interval_for
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.models import BarStream, Snapshot

NO_SNAPSHOTS = "the Binance provider serves klines only; snapshots come from Massive"


class BinanceProvider:
    """Bars of a Binance symbol (`BTCUSDT`) per pipeline timeframe; the client is not owned (close it)."""

    def __init__(self, client: BinanceClient, *, name: str = "binance") -> None:
        self.client = client
        self.name = name

    def fetch_bars(self, ticker: str, timeframe: Timeframe | str, start: pd.Timestamp, end: pd.Timestamp) -> KlineFetch:
        return self.client.get_klines(ticker, interval_for(timeframe), start, end)

    def stream_bars(self, ticker: str, timeframe: Timeframe | str, start: pd.Timestamp, end: pd.Timestamp) -> BarStream:
        """The klines of `fetch_bars` page by page (at most 1,000 a page), with the same requests."""
        return BarStream(self.client.stream_klines(ticker, interval_for(timeframe), start, end))

    def snapshots(self, tickers: Sequence[str]) -> tuple[list[Snapshot], dict[str, str]]:
        """None: the snapshot schedule asks Massive for Massive tickers only."""
        return [], dict.fromkeys(tickers, NO_SNAPSHOTS)
