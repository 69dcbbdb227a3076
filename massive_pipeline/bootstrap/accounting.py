"""What a ranged aggregates request costs under the API's own accounting.

The provider stores only minute and day aggregates (massive-api.md, "`limit` counts base bars").
A request's `limit` (at most 50,000) caps the *base* aggregates it scans, not the bars it returns:
an M5, H1 or H4 request scans the minutes of its range, a D1 or W1 request the days. The client
(`massive/client.py`) asks for `limit=50000` and follows every `next_url`, each page one request
through the rate limiter, and a fetched asset's run is one such ranged fetch over the run's days.
So a fetch of the UTC days first..last costs:

- minute-based timeframes: pages of whole bars, each page at most `page_limit` minutes (a bar is
  never split between pages, as the bundled server does too), so M1 costs ceil(minutes / 50,000);
- day and week timeframes: ceil(day bars / 50,000), one request for anything under a century;
- at least one request, even for days without a trade (the first request always goes out).

The minutes counted are the market calendar's trading minutes, an upper bound of the bars the
provider has (thin hours miss minutes): the real cost can only be lower, never higher.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.client import MAX_LIMIT

_DAY_SPANS = frozenset({"day", "week"})


def counts_days(timeframe: Timeframe) -> bool:
    """Whether a request of this timeframe scans day aggregates (D1, W1) rather than minutes."""
    return timeframe.api_timespan in _DAY_SPANS


@functools.lru_cache(maxsize=64)
def open_minutes(calendar: str, first_day: dt.date, last_day: dt.date) -> pd.DatetimeIndex:
    """Trading minutes of the UTC days first..last; cached, as every symbol of a calendar asks."""
    start = pd.Timestamp(first_day, tz="UTC")
    return get_calendar(calendar).open_minutes(start, pd.Timestamp(last_day, tz="UTC") + pd.Timedelta(days=1))


@functools.lru_cache(maxsize=64)
def _minutes_per_day(calendar: str, first_day: dt.date, last_day: dt.date) -> np.ndarray:
    minutes = open_minutes(calendar, first_day, last_day)
    day0 = pd.Timestamp(first_day, tz="UTC").value
    index = (minutes.asi8 - day0) // (86_400 * 10**9)
    return np.bincount(index, minlength=(last_day - first_day).days + 1)


def pages_of(bucket_sizes: np.ndarray, page_limit: int) -> int:
    """Pages a scan of these buckets (base bars per bar, in order) takes: each page holds whole
    buckets and at most `page_limit` base bars, except a single bucket larger than that."""
    sizes = bucket_sizes[bucket_sizes > 0]
    if len(sizes) == 0:
        return 0
    if int(sizes.max()) == 1:
        return math.ceil(len(sizes) / page_limit)
    pages, filled = 1, 0
    for size in sizes.tolist():
        if filled and filled + size > page_limit:
            pages, filled = pages + 1, 0
        filled += size
    return pages


@dataclass(frozen=True)
class Cost:
    """Requests of one ranged fetch and the base bars they scan."""

    requests: int
    base_bars: int


@dataclass(frozen=True)
class Accounting:
    """The API's accounting with `page_limit` base bars per request (50,000 on every plan)."""

    page_limit: int = MAX_LIMIT

    def __post_init__(self) -> None:
        if isinstance(self.page_limit, bool) or not isinstance(self.page_limit, int) or self.page_limit < 1:
            raise ValueError(f"page_limit must be a positive whole number of base bars, got {self.page_limit!r}")

    def cost(self, calendar: str, timeframe: Timeframe, first_day: dt.date, last_day: dt.date) -> Cost:
        """A fetch of `timeframe` bars over the UTC days first..last (inclusive) of a market."""
        return _cost(calendar, timeframe, first_day, last_day, self.page_limit)


@functools.lru_cache(maxsize=4096)
def _cost(calendar: str, timeframe: Timeframe, first_day: dt.date, last_day: dt.date, page_limit: int) -> Cost:
    if last_day < first_day:
        return Cost(0, 0)
    per_day = _minutes_per_day(calendar, first_day, last_day)
    if counts_days(timeframe):
        days = int((per_day > 0).sum())
        return Cost(max(1, math.ceil(days / page_limit)), days)
    minutes = int(per_day.sum())
    if timeframe is Timeframe.M1:
        return Cost(max(1, math.ceil(minutes / page_limit)), minutes)
    stamps = open_minutes(calendar, first_day, last_day)
    buckets = np.unique(timeframe.floor(stamps).asi8, return_counts=True)[1]
    return Cost(max(1, pages_of(buckets, page_limit)), minutes)
