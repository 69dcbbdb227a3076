"""How fresh a series is, judged against its market's calendar rather than the wall clock.

A forex series whose last bar is Friday's close is not stale on Saturday: the reference point is
the end of the last trading minute, not "now". Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.settings import FRESHNESS_LIMITS

# The provider publishes a minute's aggregate shortly after the minute ends: a refresh made this
# long after the close has seen everything the session produced.
SETTLE = pd.Timedelta(minutes=2)
_ONE_MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class Freshness:
    """One series at one moment: its last bar, how far behind its market it is, and whether that is too far."""

    timeframe: Timeframe
    now: pd.Timestamp
    last_bar: pd.Timestamp | None
    # end of the last trading minute at `now` (None: the market has not traded for 10 days)
    reference: pd.Timestamp | None
    market_open: bool
    limit: pd.Timedelta

    @property
    def lag(self) -> pd.Timedelta | None:
        """Time from the last bar's start to the end of the market's last trading minute."""
        if self.last_bar is None:
            return None
        if self.reference is None:
            return pd.Timedelta(0)
        return max(pd.Timedelta(0), self.reference - self.last_bar)

    @property
    def age(self) -> pd.Timedelta | None:
        """Wall-clock time since the last bar started (what `status` prints)."""
        return None if self.last_bar is None else self.now - self.last_bar

    @property
    def ratio(self) -> float:
        """lag ÷ limit; no data at all counts as infinitely behind."""
        lag = self.lag
        return float("inf") if lag is None else lag / self.limit

    @property
    def stale(self) -> bool:
        return self.ratio > 1.0

    @property
    def label(self) -> str:
        if self.last_bar is None:
            return "no data"
        if self.stale:
            return "stale"
        return "fresh" if self.market_open else "closed"

    def closed_since(self) -> pd.Timestamp | None:
        """When the market closed, if it is closed now."""
        return None if self.market_open else self.reference

    def trading_day(self) -> dt.date:
        """The UTC day whose partition holds the newest bars the market can have produced."""
        if self.market_open or self.reference is None:
            return self.now.date()
        return (self.reference - _ONE_MINUTE).date()


def assess(spec: SymbolSpec, timeframe: Timeframe, last_bar: pd.Timestamp | None, now: pd.Timestamp) -> Freshness:
    calendar = spec.market_calendar
    last_open = calendar.last_open_minute(now)
    reference = None if last_open is None else min(now, last_open + _ONE_MINUTE)
    return Freshness(
        timeframe=timeframe,
        now=now,
        last_bar=None if last_bar is None else pd.Timestamp(last_bar).tz_convert("UTC"),
        reference=reference,
        market_open=calendar.is_open_at(now.floor("min")),
        limit=FRESHNESS_LIMITS[timeframe],
    )


def refresh_days(
    spec: SymbolSpec, freshness: Freshness, *, midnight_grace: dt.timedelta, catch_up_days: int
) -> tuple[dt.date, dt.date]:
    """First and last UTC day (inclusive) a refresh of this series should fetch.

    The market's current trading day; the day before it too just after midnight; and back to the
    day of the last stored bar when that is older (at most `catch_up_days`), because one ranged
    request costs the same whether it covers one day or a week.
    """
    last = freshness.trading_day()
    first = last
    now = freshness.now
    if freshness.market_open and now - now.floor("D") < pd.Timedelta(midnight_grace):
        first = last - dt.timedelta(days=1)
    if freshness.last_bar is not None and freshness.last_bar.date() < first:
        first = max(freshness.last_bar.date(), last - dt.timedelta(days=catch_up_days - 1))
    return max(first, spec.start), max(last, spec.start)


def weeks_covering(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The Monday partitions (W1 keys) of the weeks holding first..last."""
    return first - dt.timedelta(days=first.weekday()), last - dt.timedelta(days=last.weekday())
