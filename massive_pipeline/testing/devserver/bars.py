"""Columnar OHLCV bars and the bucketing rules of the aggregates endpoint.

Bars are kept as parallel numpy arrays rather than a DataFrame: a page of 50,000 minutes is cut,
filtered, aggregated and serialized many times per test run, and plain arrays make that cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; weekly buckets start on Monday 1969-12-29 00:00 UTC and every 7 days on.
_WEEK_ORIGIN_MS = -3 * DAY_MS

TIMESPAN_MS: dict[str, int] = {"minute": MINUTE_MS, "hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}


_SUNDAY_ORIGIN_MS = 3 * DAY_MS  # 1970-01-04 was a Sunday


@dataclass(frozen=True)
class Bucketing:
    """Fixed-size buckets `size_ms` wide, aligned on `origin_ms` (the epoch, or a Monday for weeks).

    With `tz` set the buckets are that zone's days (or weeks starting on `origin_ms`'s weekday) and
    last 23 to 25 hours across a daylight-saving change: how Massive cuts day and week bars for
    crypto and indices (midnight US/Eastern), see `stamping()`.
    """

    size_ms: int
    origin_ms: int = 0
    tz: str | None = None

    @classmethod
    def stamping(cls, multiplier: int, timespan: str, asset_class: str, convention: str) -> Bucketing:
        """The buckets the real API cuts for this asset class (`convention="massive"`), or UTC ones.

        From Massive's OpenAPI examples and knowledge base: forex (and metals, quoted as forex) day
        bars start 00:00 UTC; crypto and index day bars 00:00 US/Eastern; weekly bars start on
        Sunday (in the same zone as the days). Multi-day buckets stay on the UTC epoch grid.
        """
        plain = cls.of(multiplier, timespan)
        if convention != "massive" or multiplier != 1 or timespan not in ("day", "week"):
            return plain
        origin = _SUNDAY_ORIGIN_MS if timespan == "week" else 0
        tz = None if asset_class in ("forex", "metal") else "America/New_York"
        return cls(plain.size_ms, origin, tz)

    @classmethod
    def of(cls, multiplier: int, timespan: str) -> Bucketing:
        if timespan not in TIMESPAN_MS:
            raise ValueError(f"timespan must be one of {', '.join(TIMESPAN_MS)}, got {timespan!r}")
        if multiplier < 1:
            raise ValueError(f"multiplier must be a positive integer, got {multiplier!r}")
        origin = _WEEK_ORIGIN_MS if timespan == "week" else 0
        return cls(multiplier * TIMESPAN_MS[timespan], origin)

    @property
    def is_minute(self) -> bool:
        return self.size_ms == MINUTE_MS

    def floor(self, ms: int) -> int:
        if self.tz is not None:
            return int(self.floor_array(np.array([ms], dtype=np.int64))[0])
        return self.origin_ms + (ms - self.origin_ms) // self.size_ms * self.size_ms

    def end_of(self, ms: int) -> int:
        """Start of the bucket after the one holding `ms`."""
        start = self.floor(ms)
        if self.tz is None:
            return start + self.size_ms
        return self.floor(start + self.size_ms + HOUR_MS)  # a zone's day lasts 23 to 25 hours

    def floor_array(self, ms: np.ndarray) -> np.ndarray:
        if self.tz is None:
            return self.origin_ms + (ms - self.origin_ms) // self.size_ms * self.size_ms
        if len(ms) == 0:
            return np.asarray(ms, dtype=np.int64)
        local = pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True).tz_convert(self.tz)
        days = local.tz_localize(None).normalize()  # wall-clock midnights; never ambiguous in New York
        if self.size_ms == WEEK_MS:
            origin_weekday = (3 + self.origin_ms // DAY_MS) % 7  # 1970-01-01 was a Thursday (3)
            days = days - pd.to_timedelta((days.weekday - origin_weekday) % 7, unit="D")
        starts = days.tz_localize(self.tz).tz_convert("UTC")
        return (starts.asi8 // 1_000_000).astype(np.int64)


@dataclass(frozen=True)
class Bars:
    """Bars sorted by start time `t` (Unix ms); all arrays have the same length."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741 - the API's own field name
    c: np.ndarray
    v: np.ndarray
    vw: np.ndarray
    n: np.ndarray

    FIELDS = ("t", "o", "h", "l", "c", "v", "vw", "n")

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls) -> Bars:
        f = np.zeros(0, dtype=np.float64)
        i = np.zeros(0, dtype=np.int64)
        return cls(i, f, f, f, f, f, f, i)

    @classmethod
    def concat(cls, parts: list[Bars]) -> Bars:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.FIELDS))

    def select(self, sel: np.ndarray | slice) -> Bars:
        return Bars(*(getattr(self, name)[sel] for name in self.FIELDS))

    def between(self, start_ms: int, end_ms: int) -> Bars:
        """Bars with start_ms <= t < end_ms."""
        lo, hi = np.searchsorted(self.t, [start_ms, end_ms], side="left")
        return self.select(slice(int(lo), int(hi)))

    def writable_copy(self) -> Bars:
        return Bars(*(getattr(self, name).copy() for name in self.FIELDS))

    def frozen(self) -> Bars:
        """The same bars with read-only arrays, so that a shared cached day cannot be edited in place."""
        for name in self.FIELDS:
            getattr(self, name).flags.writeable = False
        return self


def group_starts(bars: Bars, bucketing: Bucketing) -> tuple[np.ndarray, np.ndarray]:
    """(bucket start of each bar, index of the first bar of each non-empty bucket)."""
    starts = bucketing.floor_array(bars.t)
    if len(starts) == 0:
        return starts, np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    return starts, first


def aggregate(bars: Bars, bucketing: Bucketing) -> Bars:
    """Aggregate sorted minute bars into buckets: open first, high max, low min, close last,
    volume and trades summed, vw volume-weighted; empty buckets produce no bar."""
    if bucketing.is_minute or len(bars) == 0:
        return bars
    starts, first = group_starts(bars, bucketing)
    last = np.r_[first[1:] - 1, len(bars) - 1]
    volume = np.add.reduceat(bars.v, first)
    weighted = np.add.reduceat(bars.vw * bars.v, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        vw = np.where(volume > 0, weighted / np.where(volume > 0, volume, 1.0), bars.c[last])
    return Bars(
        t=starts[first],
        o=bars.o[first],
        h=np.maximum.reduceat(bars.h, first),
        l=np.minimum.reduceat(bars.l, first),
        c=bars.c[last],
        v=volume,
        vw=vw,
        n=np.add.reduceat(bars.n, first),
    )
