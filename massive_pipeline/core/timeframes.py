"""Bar sizes the pipeline knows, and how bars of each size line up in time.

Pure functions, no I/O: the assets, the store, the checks and the bundled server all ask this
module what a timeframe is, so that "an H4 bar" means the same thing everywhere.
D1 bars are UTC days and W1 bars start on Monday 00:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd


class UnknownTimeframeError(ValueError):
    """A timeframe name that is neither a canonical name nor a known alias."""


@dataclass(frozen=True)
class _Spec:
    minutes: int
    multiplier: int
    timespan: str
    freq: str


class Timeframe(StrEnum):
    """The eight bar sizes; the value is the canonical name stored in the `candles` table."""

    M1 = "M1"
    M5 = "M5"
    M15 = "M15"
    M30 = "M30"
    H1 = "H1"
    H4 = "H4"
    D1 = "D1"
    W1 = "W1"

    @property
    def _spec(self) -> _Spec:
        return _SPECS[self]

    @property
    def minutes(self) -> int:
        return self._spec.minutes

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
        if self is Timeframe.W1:
            day = ts.floor("D")
            if isinstance(day, pd.DatetimeIndex):
                return day - pd.to_timedelta(day.dayofweek, unit="D")
            return day - pd.Timedelta(days=day.dayofweek)
        return ts.floor(self.pandas_freq)

    def is_aligned(self, ts: pd.DatetimeIndex) -> pd.Series | bool:
        """Whether each timestamp sits on this timeframe's grid."""
        return self.floor(ts) == ts

    def bars_per_day(self) -> float:
        return 1440 / self.minutes


_SPECS: dict[Timeframe, _Spec] = {
    Timeframe.M1: _Spec(1, 1, "minute", "1min"),
    Timeframe.M5: _Spec(5, 5, "minute", "5min"),
    Timeframe.M15: _Spec(15, 15, "minute", "15min"),
    Timeframe.M30: _Spec(30, 30, "minute", "30min"),
    Timeframe.H1: _Spec(60, 1, "hour", "1h"),
    Timeframe.H4: _Spec(240, 4, "hour", "4h"),
    Timeframe.D1: _Spec(1440, 1, "day", "1D"),
    Timeframe.W1: _Spec(10080, 1, "week", "W-MON"),
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
}.items():
    _ALIASES[_alias] = _tf

ALL_TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)


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
