"""Whether the provider's day and week bars are the store's D1 and W1, market by market.

The store's D1 is the UTC day and its W1 the week from Monday 00:00 UTC (`core/timeframes.py`).
The provider cuts its day bars at 00:00 UTC for forex and metals (`C:` tickers) but at midnight
US/Eastern for crypto and indices, and starts its weeks on Sunday in the same zone
(massive-api.md, "Bar stamps"; the client moves the *stamps* onto the UTC grid, `stamps.py`,
but the *values* stay the provider's). A fetched bar is the store's bar exactly when the two cuts
group the market's trading minutes the same way: forex D1 yes; crypto D1 no (00:00-04:00 UTC
falls into the previous US/Eastern day); forex W1 no (Sunday evening's open starts the
provider's week but ends the store's); index D1 and W1 yes (their sessions lie inside every cut).
Deriving from the base is then the only correct source, and the planner says so.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd

from massive_pipeline.bootstrap.accounting import open_minutes
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import NEW_YORK, Timeframe

UTC_DAY_PREFIXES = ("C:",)  # forex and metals: day bars on UTC days


def provider_day_zone(spec: SymbolSpec) -> str:
    """The zone whose midnight starts the provider's day (and Sunday week) bars for this ticker."""
    return "UTC" if spec.ticker.startswith(UTC_DAY_PREFIXES) else NEW_YORK


def _provider_keys(minutes: pd.DatetimeIndex, zone: str, weekly: bool) -> np.ndarray:
    local = minutes.tz_convert(zone).tz_localize(None).normalize()
    if weekly:  # Sunday-based weeks: back to the Sunday on or before the day
        local = local - pd.to_timedelta((local.dayofweek + 1) % 7, unit="D")
    return local.asi8


@functools.lru_cache(maxsize=256)
def _same_grouping(calendar: str, zone: str, timeframe: Timeframe, first_day: dt.date, last_day: dt.date) -> bool:
    minutes = open_minutes(calendar, first_day, last_day)
    if len(minutes) == 0:
        return True
    # both keys only grow with time, so the groupings are equal when they change at the same minutes
    ours = np.diff(timeframe.floor(minutes).asi8) != 0
    theirs = np.diff(_provider_keys(minutes, zone, timeframe.is_weekly)) != 0
    return bool(np.array_equal(ours, theirs))


def fetch_mismatch(spec: SymbolSpec, timeframe: Timeframe, first_day: dt.date, last_day: dt.date) -> str | None:
    """Why a directly fetched `timeframe` would not be the store's bars over these days, or None.

    Intraday bars are UTC-aligned in both; the New York timeframes are never fetched (the catalog
    refuses them). Judged on the market calendar's own trading minutes of the days concerned.
    """
    if timeframe not in (Timeframe.D1, Timeframe.W1):
        return None
    zone = provider_day_zone(spec)
    if _same_grouping(spec.calendar, zone, timeframe, first_day, last_day):
        return None
    if timeframe is Timeframe.D1:
        return (f"the provider cuts {spec.symbol}'s day bars at midnight {zone}, the store's D1 at 00:00 UTC, "
                "and the market trades across the difference: derive D1 from the base")
    return (f"the provider's weeks start on Sunday 00:00 {zone}, the store's W1 on Monday 00:00 UTC, and "
            f"{spec.symbol} trades between the two: derive W1 from the base")
