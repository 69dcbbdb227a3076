"""The seam between the pipeline and a market-data source.

Assets code against `BarProvider`, not against Massive, so a second source (e.g. Binance klines,
see DESIGN §1.13) plugs in by implementing two methods. `MassiveProvider` adapts `MassiveClient`:
timeframes become (multiplier, timespan), and snapshots prefer the one-call universal endpoint,
falling back to per-ticker endpoints for what it could not serve (plans without `/v3/snapshot`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from massive_pipeline.massive.client import MassiveClient
from massive_pipeline.massive.errors import MassiveAuthError, MassiveError, MassiveNotFoundError
from massive_pipeline.massive.models import FetchResult, Snapshot
from massive_pipeline.timeframes import Timeframe, parse_timeframe


@runtime_checkable
class BarProvider(Protocol):
    """A source of OHLCV bars and latest-price snapshots."""

    name: str

    def fetch_bars(self, ticker: str, timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp) -> FetchResult:
        """Bars starting in [start, end) UTC, sorted and unique on ts."""
        ...

    def snapshots(self, tickers: Sequence[str]) -> tuple[list[Snapshot], dict[str, str]]:
        """Snapshots of the tickers it could serve, and {ticker: reason} for the rest."""
        ...


class MassiveProvider:
    """`BarProvider` over a `MassiveClient` (which it does not own: close the client yourself)."""

    def __init__(self, client: MassiveClient, *, name: str = "massive", logger: logging.Logger | None = None) -> None:
        self.client = client
        self.name = name
        self._log = logger or logging.getLogger(__name__)

    def fetch_bars(self, ticker: str, timeframe: Timeframe | str, start: pd.Timestamp, end: pd.Timestamp) -> FetchResult:
        tf = parse_timeframe(timeframe)
        return self.client.get_aggregates(ticker, tf.api_multiplier, tf.api_timespan, start, end)

    def snapshots(self, tickers: Sequence[str]) -> tuple[list[Snapshot], dict[str, str]]:
        """Universal snapshot first; single-ticker endpoints for whatever it left out.

        A 401 propagates (nothing will work with that key); a 403/404 from `/v3/snapshot` means the
        plan or deployment lacks it, so every ticker falls back. Per-ticker failures of the fallback
        are reported in the dict, not raised, so one bad ticker does not hide the others.
        """
        wanted = list(dict.fromkeys(tickers))
        try:
            found, errors = self.client.get_universal_snapshot(wanted)
        except (MassiveAuthError, MassiveNotFoundError) as exc:
            if isinstance(exc, MassiveAuthError) and exc.status != 403:
                raise
            self._log.info("universal snapshot unavailable (%s); using single-ticker snapshots", exc.status)
            found, errors = [], dict.fromkeys(wanted, "universal snapshot unavailable")
        by_ticker = {s.ticker: s for s in found}
        for ticker in [t for t in wanted if t not in by_ticker]:
            try:
                by_ticker[ticker] = self.client.get_snapshot(ticker)
            except MassiveAuthError as exc:
                if exc.status != 403:
                    raise
                errors[ticker] = str(exc)
            except (MassiveError, ValueError) as exc:
                errors[ticker] = f"{errors.get(ticker, 'missing')}; single-ticker snapshot: {exc}"
            else:
                errors.pop(ticker, None)
        return [by_ticker[t] for t in wanted if t in by_ticker], errors
