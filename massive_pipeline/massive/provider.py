"""The seam between the pipeline and a market-data source.

Assets code against `BarProvider`, not against Massive, so a second source (e.g. Binance klines,
see DESIGN §1.13) plugs in by implementing two methods. `MassiveProvider` adapts `MassiveClient`:
timeframes become (multiplier, timespan), and snapshots prefer the one-call universal endpoint,
falling back to per-ticker endpoints for what it could not serve (plans without `/v3/snapshot`).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe, parse_timeframe
from massive_pipeline.massive.client import MassiveClient
from massive_pipeline.massive.errors import (
    MassiveAuthError,
    MassiveError,
    MassiveNotEntitledError,
    MassiveNotFoundError,
)
from massive_pipeline.massive.models import BarStream, FetchResult, Snapshot


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

    def stream_bars(self, ticker: str, timeframe: Timeframe | str, start: pd.Timestamp, end: pd.Timestamp) -> BarStream:
        """The bars of `fetch_bars` page by page, with the same requests (`MassiveClient.stream_aggregates`)."""
        tf = parse_timeframe(timeframe)
        return BarStream(self.client.stream_aggregates(ticker, tf.api_multiplier, tf.api_timespan, start, end))

    def snapshots(self, tickers: Sequence[str]) -> tuple[list[Snapshot], dict[str, str]]:
        """Universal snapshot first; single-ticker endpoints for whatever it left out.

        A 401 propagates (nothing will work with that key); a 403/404 from `/v3/snapshot` means the
        plan or deployment lacks it, so every ticker falls back. Per-ticker failures of the fallback
        are reported in the dict, not raised, so one bad ticker does not hide the others. A 403 on a
        market's single-ticker endpoint stands for every ticker of that market (the plan, not the
        ticker, is the problem), so the others are not asked. When no ticker could be served and
        every endpoint tried refused for the plan, `MassiveNotEntitledError` says so once, naming
        the endpoints, so the caller can stop asking instead of spending requests every tick.
        """
        wanted = list(dict.fromkeys(tickers))
        refused: dict[str, str] = {}  # endpoint -> reason
        try:
            found, errors = self.client.get_universal_snapshot(wanted)
        except (MassiveAuthError, MassiveNotFoundError) as exc:
            if isinstance(exc, MassiveAuthError) and exc.status != 403:
                raise
            if isinstance(exc, MassiveNotEntitledError):
                refused["/v3/snapshot"] = str(exc)
            self._log.info("universal snapshot unavailable (%s); using single-ticker snapshots", exc.status)
            found, errors = [], dict.fromkeys(wanted, "universal snapshot unavailable")
        by_ticker = {s.ticker: s for s in found}
        for ticker in [t for t in wanted if t not in by_ticker]:
            endpoint = single_snapshot_endpoint(ticker)
            if endpoint in refused:
                errors[ticker] = refused[endpoint]
                continue
            try:
                by_ticker[ticker] = self.client.get_snapshot(ticker)
            except MassiveAuthError as exc:
                if exc.status != 403:
                    raise
                errors[ticker] = str(exc)
                if isinstance(exc, MassiveNotEntitledError):
                    refused[endpoint] = str(exc)
            except (MassiveError, ValueError) as exc:
                errors[ticker] = f"{errors.get(ticker, 'missing')}; single-ticker snapshot: {exc}"
            else:
                errors.pop(ticker, None)
        if not by_ticker and refused and all(single_snapshot_endpoint(t) in refused for t in wanted):
            raise MassiveNotEntitledError(
                "Massive snapshots are not on this plan: " + ", ".join(sorted(refused))
                + " answered 403 NOT_AUTHORIZED (single-ticker forex/crypto snapshots are not on the free "
                "currencies plan; aggregates are unaffected). Upgrade the plan or leave the snapshot "
                "schedule off.", method="GET", path=sorted(refused)[0], status=403)
        return [by_ticker[t] for t in wanted if t in by_ticker], errors


def stream_bars(provider: BarProvider, ticker: str, timeframe: Timeframe, start: pd.Timestamp,
                end: pd.Timestamp) -> BarStream:
    """The provider's bars for [start, end) as pages: its own `stream_bars` when it has one (the
    pages its API sends), else its whole `fetch_bars` answer as the one page, so a provider that
    implements only the protocol's two methods still serves a ranged run."""
    own = getattr(provider, "stream_bars", None)
    if own is not None:
        return own(ticker, timeframe, start, end)
    return BarStream(_whole(provider.fetch_bars(ticker, timeframe, start, end)))


def _whole(fetched: FetchResult) -> Generator[pd.DataFrame, None, FetchResult]:
    yield fetched.bars
    return replace(fetched, bars=fetched.bars.iloc[0:0])


def single_snapshot_endpoint(ticker: str) -> str:
    """The single-ticker snapshot path template a ticker is served by (one per market)."""
    market = "crypto" if ticker.startswith("X:") else "forex" if ticker.startswith("C:") else "none"
    return f"/v2/snapshot/locale/global/markets/{market}/tickers/{{ticker}}"
