"""Bar sizes the pipeline knows, and how bars of each size line up in time.

Pure functions, no I/O: the assets, the store, the checks and the bundled server all ask this
module what a timeframe is, so that "an H4 bar" means the same thing everywhere.
D1 bars are UTC days and W1 bars start on Monday 00:00 UTC.

D1_NY and W1_NY are the same bar sizes in the forex trader's day, the convention of MT4/MT5
brokers: a day runs from 17:00 New York to 17:00 New York the next day (so a forex week has five
daily bars, the Sunday-evening open belonging to Monday's bar) and a week starts at Sunday's 17:00
New York open. Their grid follows New York's wall clock, so in UTC a bar starts at 21:00 or 22:00
depending on US daylight saving, and a bar spanning a DST change is 23 or 25 hours (a week 167 or
169): `bar_end` gives the real end, `delta` only the nominal length.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

NEW_YORK = "America/New_York"
# The hour of New York's wall clock at which the forex trading day (and a D1_NY bar) begins.
NEW_YORK_CLOSE_HOUR = 17


class UnknownTimeframeError(ValueError):
    """A timeframe name that is neither a canonical name nor a known alias."""


class Convention(StrEnum):
    """Where day and week bars begin: UTC midnight (Monday for weeks), or 17:00 New York (Sunday).

    The catalog lists a symbol's conventions by these names; intraday bars are the same in both.
    """

    UTC = "utc"
    NEW_YORK_CLOSE = "new_york_close"


@dataclass(frozen=True)
class _Spec:
    minutes: int
    multiplier: int
    timespan: str
    freq: str


class Timeframe(StrEnum):
    """The bar sizes; the value is the canonical name stored in the `candles` table (at most 8 characters)."""

    M1 = "M1"
    M5 = "M5"
    M15 = "M15"
    M30 = "M30"
    H1 = "H1"
    H4 = "H4"
    D1 = "D1"
    W1 = "W1"
    # Appended after the UTC ones so that iterating the enum keeps the eight original first.
    D1_NY = "D1_NY"
    W1_NY = "W1_NY"

    @property
    def _spec(self) -> _Spec:
        return _SPECS[self]

    @property
    def minutes(self) -> int:
        """Nominal length; a New York bar spanning a DST change is an hour shorter or longer."""
        return self._spec.minutes

    @property
    def convention(self) -> Convention | None:
        """The day convention of a day or week bar; None for intraday bars, the same in every one."""
        if self in _NEW_YORK:
            return Convention.NEW_YORK_CLOSE
        return Convention.UTC if self in (Timeframe.D1, Timeframe.W1) else None

    @property
    def is_new_york(self) -> bool:
        return self in _NEW_YORK

    @property
    def is_weekly(self) -> bool:
        return self in (Timeframe.W1, Timeframe.W1_NY)

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.minutes)

    @property
    def api_multiplier(self) -> int:
        """`multiplier` of the aggregates endpoint for this bar size."""
        return self._spec.multiplier

    @property
    def api_timespan(self) -> str:
        """`timespan` of the aggregates endpoint for this bar size."""
        return self._spec.timespan

    @property
    def pandas_freq(self) -> str:
        """Frequency string for `resample`/`floor`; W1 is anchored on Monday."""
        return self._spec.freq

    @property
    def key(self) -> str:
        """Lower-case name used in asset keys (`candles/eurusd/h1`)."""
        return self.value.lower()

    def floor(self, ts: pd.Timestamp | pd.DatetimeIndex) -> pd.Timestamp | pd.DatetimeIndex:
        """Start of the bar that contains `ts` (UTC)."""
        if self in _NEW_YORK:
            return _new_york_floor(ts, weekly=self is Timeframe.W1_NY)
        if self is Timeframe.W1:
            day = ts.floor("D")
            if isinstance(day, pd.DatetimeIndex):
                return day - pd.to_timedelta(day.dayofweek, unit="D")
            return day - pd.Timedelta(days=day.dayofweek)
        return ts.floor(self.pandas_freq)

    def bar_end(self, ts: pd.Timestamp | pd.DatetimeIndex) -> pd.Timestamp | pd.DatetimeIndex:
        """End of the bar that starts at `ts` (the next bar's start): `ts + delta`, except that a
        New York bar ends at 17:00 New York, 23 or 25 hours later across a DST change."""
        if self in _NEW_YORK:
            return _new_york_next(ts, days=7 if self is Timeframe.W1_NY else 1)
        return ts + self.delta

    def grid_ns(self, ts: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
        """Bar starts as int64 nanoseconds on a grid of uniform `delta` steps, for grid arithmetic
        (gap runs, presence by slot): UTC for the UTC timeframes, New York wall time for the New
        York ones, whose UTC starts move by an hour at each DST change."""
        index = pd.DatetimeIndex(ts)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        if self in _NEW_YORK:
            index = _new_york_wall(index)
        return index.as_unit("ns").asi8

    def from_grid_ns(self, ns: np.ndarray) -> np.ndarray:
        """The inverse of `grid_ns`: UTC int64 nanoseconds of grid points (bar starts or ends)."""
        if self not in _NEW_YORK or len(ns) == 0:
            return np.asarray(ns, dtype=np.int64)
        return _from_new_york_wall(pd.DatetimeIndex(pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns"))).asi8

    def is_aligned(self, ts: pd.DatetimeIndex) -> pd.Series | bool:
        """Whether each timestamp sits on this timeframe's grid."""
        return self.floor(ts) == ts

    def bars_per_day(self) -> float:
        return 1440 / self.minutes


_NEW_YORK = frozenset({Timeframe.D1_NY, Timeframe.W1_NY})
_DAY_SHIFT = pd.Timedelta(hours=NEW_YORK_CLOSE_HOUR)


def _new_york_wall(ts: pd.Timestamp | pd.DatetimeIndex) -> pd.Timestamp | pd.DatetimeIndex:
    """New York wall-clock time, naive, so that day arithmetic counts wall hours, not elapsed ones."""
    return ts.tz_convert(NEW_YORK).tz_localize(None)


def _from_new_york_wall(wall: pd.Timestamp | pd.DatetimeIndex) -> pd.Timestamp | pd.DatetimeIndex:
    """A naive New York wall time at 17:00 as a UTC instant; 17:00 is never skipped or repeated
    by a US DST change (those happen at 02:00), so the localization is unambiguous."""
    return wall.tz_localize(NEW_YORK).tz_convert("UTC")


def _new_york_floor(ts: pd.Timestamp | pd.DatetimeIndex, *, weekly: bool) -> pd.Timestamp | pd.DatetimeIndex:
    """Start of the New York day (or Sunday-based week) holding `ts`: the last 17:00 New York.

    The trading day of a wall time is the calendar day of (wall time - 17 h); its bar starts at
    17:00 on that day. A week starts on the Sunday on or before that day.
    """
    day = (_new_york_wall(ts) - _DAY_SHIFT).floor("D")
    if weekly:
        back = (day.dayofweek + 1) % 7  # Monday 0 .. Sunday 6 -> days since Sunday
        day = day - (pd.to_timedelta(back, unit="D") if isinstance(day, pd.DatetimeIndex) else pd.Timedelta(days=back))
    return _from_new_york_wall(day + _DAY_SHIFT)


def _new_york_next(ts: pd.Timestamp | pd.DatetimeIndex, *, days: int) -> pd.Timestamp | pd.DatetimeIndex:
    """17:00 New York `days` wall-clock days after the bar start `ts`."""
    return _from_new_york_wall(_new_york_wall(ts) + pd.Timedelta(days=days))


_SPECS: dict[Timeframe, _Spec] = {
    Timeframe.M1: _Spec(1, 1, "minute", "1min"),
    Timeframe.M5: _Spec(5, 5, "minute", "5min"),
    Timeframe.M15: _Spec(15, 15, "minute", "15min"),
    Timeframe.M30: _Spec(30, 30, "minute", "30min"),
    Timeframe.H1: _Spec(60, 1, "hour", "1h"),
    Timeframe.H4: _Spec(240, 4, "hour", "4h"),
    Timeframe.D1: _Spec(1440, 1, "day", "1D"),
    Timeframe.W1: _Spec(10080, 1, "week", "W-MON"),
    # No API bar size: Massive's day and week bars are UTC (or Eastern midnight); these are derived.
    Timeframe.D1_NY: _Spec(1440, 1, "day", "1D"),
    Timeframe.W1_NY: _Spec(10080, 1, "week", "W-SUN"),
}

_ALIASES: dict[str, Timeframe] = {}
for _tf in Timeframe:
    _ALIASES[_tf.value.lower()] = _tf
for _alias, _tf in {
    "1m": Timeframe.M1, "1min": Timeframe.M1, "1minute": Timeframe.M1, "minute": Timeframe.M1,
    "5m": Timeframe.M5, "5min": Timeframe.M5,
    "15m": Timeframe.M15, "15min": Timeframe.M15,
    "30m": Timeframe.M30, "30min": Timeframe.M30,
    "1h": Timeframe.H1, "60m": Timeframe.H1, "60min": Timeframe.H1, "hour": Timeframe.H1,
    "4h": Timeframe.H4, "240m": Timeframe.H4,
    "1d": Timeframe.D1, "d": Timeframe.D1, "day": Timeframe.D1, "daily": Timeframe.D1,
    "1w": Timeframe.W1, "w": Timeframe.W1, "week": Timeframe.W1, "weekly": Timeframe.W1,
    "d1ny": Timeframe.D1_NY, "1d_ny": Timeframe.D1_NY, "d1-ny": Timeframe.D1_NY,
    "w1ny": Timeframe.W1_NY, "1w_ny": Timeframe.W1_NY, "w1-ny": Timeframe.W1_NY,
}.items():
    _ALIASES[_alias] = _tf

ALL_TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)
NEW_YORK_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.D1_NY, Timeframe.W1_NY)


def parse_timeframe(name: str | Timeframe) -> Timeframe:
    """Accept `M5`, `m5`, `5m`, `5min`, `1h`, `1d`, … and return the canonical timeframe."""
    if isinstance(name, Timeframe):
        return name
    tf = _ALIASES.get(str(name).strip().lower())
    if tf is None:
        known = ", ".join(t.value for t in Timeframe)
        raise UnknownTimeframeError(f"unknown timeframe {name!r}; known: {known} (or aliases like 5min, 1h, 1d)")
    return tf


def parse_timeframes(names: str) -> list[Timeframe]:
    """Parse a comma-separated list (`M1,h1,1d`), keeping order and dropping repeats."""
    out: list[Timeframe] = []
    for part in names.split(","):
        if part.strip():
            tf = parse_timeframe(part)
            if tf not in out:
                out.append(tf)
    return out
