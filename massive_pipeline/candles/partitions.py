"""Partitions of the candle assets.

Every intraday and daily timeframe is partitioned by UTC day, so that a day of M1 and the same day
of H4 or D1 map one to one; W1 is partitioned by week starting Monday 00:00 UTC, which Dagster's
default time-window mapping turns into the seven daily partitions of the base timeframe.
`end_offset=1` makes today's (and this week's) partition exist, so the 5-minute refresh can fill
the day as it happens.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd
from dagster import DailyPartitionsDefinition, TimeWindowPartitionsDefinition, WeeklyPartitionsDefinition

from massive_pipeline.core.timeframes import Timeframe


@cache
def daily_partitions(start: dt.date) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC", end_offset=1)


@cache
def weekly_partitions(start: dt.date) -> WeeklyPartitionsDefinition:
    monday = start - dt.timedelta(days=start.weekday())
    return WeeklyPartitionsDefinition(start_date=monday.isoformat(), timezone="UTC", day_offset=1, end_offset=1)


def partitions_for(start: dt.date, timeframe: Timeframe) -> TimeWindowPartitionsDefinition:
    return weekly_partitions(start) if timeframe is Timeframe.W1 else daily_partitions(start)


def window_bounds(window) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A Dagster time window as UTC timestamps."""
    return pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")
