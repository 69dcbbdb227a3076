"""How much history a bootstrap gives each series: the verify report's required days.

The founding notes ask for M1 7 days, M5 14, M15 30, H1 90, H4 180, D1 365 and W1 730 (M30 30,
as `verify` judges it); `quality/settings.py` holds those numbers and `verify.required_start`
turns them into a first day, clipped to the catalog entry's `start`. The bootstrap uses the very
same function, so "bootstrapped" and "verify ok (not incomplete)" cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.settings import REQUIRED_HISTORY_DAYS
from massive_pipeline.quality.verify import required_start

# The eight UTC timeframes of the founding notes: what `bootstrap` fills unless told otherwise.
BOOTSTRAP_TIMEFRAMES: tuple[Timeframe, ...] = (
    Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1,
)


@dataclass(frozen=True)
class Requirement:
    """One series and the UTC days (inclusive) its history must cover."""

    spec: SymbolSpec
    timeframe: Timeframe
    first_day: dt.date
    last_day: dt.date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def required_days(self) -> int:
        return REQUIRED_HISTORY_DAYS[self.timeframe]


def requirement(spec: SymbolSpec, timeframe: Timeframe, today: dt.date) -> Requirement:
    """The days `verify` demands of this series on `today`."""
    return Requirement(spec, timeframe, required_start(spec, timeframe, today).date(), today)


def requirements(spec: SymbolSpec, timeframes: Sequence[Timeframe], today: dt.date) -> list[Requirement]:
    """The requirements of the asked timeframes this symbol has, in timeframe order."""
    wanted = [tf for tf in spec.timeframes if tf in timeframes]
    return [requirement(spec, tf, today) for tf in wanted]
