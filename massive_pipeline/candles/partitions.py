"""Partitions of the candle assets.

Every intraday and daily timeframe is partitioned by UTC day, so that a day of M1 and the same day
of H4 or D1 map one to one; W1 is partitioned by week starting Monday 00:00 UTC, which Dagster's
default time-window mapping turns into the seven daily partitions of the base timeframe.
`end_offset=1` makes today's (and this week's) partition exist, so the 5-minute refresh can fill
the day as it happens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pandas as pd
from dagster import (
    AssetKey,
    DailyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from massive_pipeline.core.asset_keys import candle_key_path
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe


class PartitionRangeError(ValueError):
    """No partition of a series lies in the asked days; the message names the series and the days."""


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


def plan_timeframes(spec: SymbolSpec, timeframes: Sequence[Timeframe]) -> list[Timeframe]:
    """The requested timeframes plus the base a derived one needs, in dependency order."""
    wanted = {tf for tf in timeframes if tf.minutes >= spec.base_timeframe.minutes}
    if any(spec.timeframe_source(tf) == "derived" for tf in wanted):
        wanted.add(spec.base_timeframe)
    return sorted(wanted, key=lambda tf: tf.minutes)


def partition_range(spec: SymbolSpec, tf: Timeframe, start: dt.date, end: dt.date) -> tuple[str, str]:
    """First and last partition keys covering the UTC days start..end (inclusive)."""
    pdef = partitions_for(spec.start, tf)
    keys = pdef.get_partition_keys()
    if tf is Timeframe.W1:
        first = (start - dt.timedelta(days=start.weekday())).isoformat()
        last = (end - dt.timedelta(days=end.weekday())).isoformat()
    else:
        first, last = start.isoformat(), end.isoformat()
    first = max(first, keys[0])
    last = min(last, keys[-1])
    if first > last:
        raise PartitionRangeError(
            f"{spec.symbol} {tf.value}: no partitions between {start} and {end} "
            f"(history starts {spec.start}, last partition {keys[-1]})"
        )
    return first, last


@dataclass(frozen=True)
class PlannedRange:
    """One candle series of a ranged run and its first and last partition key (inclusive)."""

    spec: SymbolSpec
    timeframe: Timeframe
    first: str
    last: str

    @property
    def key(self) -> AssetKey:
        return AssetKey(candle_key_path(self.spec.symbol, self.timeframe))


def planned_ranges(
    specs: Sequence[SymbolSpec], timeframes: Sequence[Timeframe], start: dt.date, end: dt.date,
) -> list[PlannedRange]:
    """The candle series and partition ranges covering the UTC days start..end: the requested
    timeframes plus the base a derived one needs, W1 over the weeks touched. The one plan that the
    in-process backfill, the submitted backfill and the data service's sync share, so they cannot
    disagree on what a range means. Raises `PartitionRangeError` naming a series with no partition
    in the range."""
    return [
        PlannedRange(spec, tf, *partition_range(spec, tf, start, end))
        for spec in specs
        for tf in plan_timeframes(spec, timeframes)
    ]
