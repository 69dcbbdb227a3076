"""Partitions of the candle assets.

Every intraday and daily timeframe is partitioned by UTC day, so that a day of M1 and the same day
of H4 or D1 map one to one; W1 is partitioned by week starting Monday 00:00 UTC, which Dagster's
default time-window mapping turns into the seven daily partitions of the series it is resampled
from (the base, or a fetched D1).
`end_offset=1` makes today's (and this week's) partition exist, so the 5-minute refresh can fill
the day as it happens.

The New York close convention (D1_NY, W1_NY) has partitions of its own, in `America/New_York` with
an hour offset of 17: partition `2026-11-01` is the trading day that opens on Sunday 1 November at
17:00 New York and closes on Monday at 17:00 (Monday's bar, as a broker labels it), and a weekly
partition is keyed by the Sunday whose 17:00 open starts the week. A key names the New York date of
its bar's start, as every other key here names the UTC date of its bar's start. Dagster maps time
windows only between partitions of one timezone, so these assets depend on their base as a whole
(`candles/assets._base_dep`); `planned_ranges` widens a plan's base range to the UTC days of every
New York session in it.
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
from massive_pipeline.core.timeframes import NEW_YORK, NEW_YORK_CLOSE_HOUR, Timeframe


class PartitionRangeError(ValueError):
    """No partition of a series lies in the asked days; the message names the series and the days."""


@cache
def daily_partitions(start: dt.date) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC", end_offset=1)


@cache
def weekly_partitions(start: dt.date) -> WeeklyPartitionsDefinition:
    monday = start - dt.timedelta(days=start.weekday())
    return WeeklyPartitionsDefinition(start_date=monday.isoformat(), timezone="UTC", day_offset=1, end_offset=1)


@cache
def new_york_daily_partitions(start: dt.date) -> DailyPartitionsDefinition:
    """Trading days from 17:00 New York; the first is the one opening on the history's first day."""
    return DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone=NEW_YORK, hour_offset=NEW_YORK_CLOSE_HOUR, end_offset=1
    )


@cache
def new_york_weekly_partitions(start: dt.date) -> WeeklyPartitionsDefinition:
    """Weeks from Sunday 17:00 New York, the first the one holding the history's first day."""
    sunday = start - dt.timedelta(days=(start.weekday() + 1) % 7)
    return WeeklyPartitionsDefinition(
        start_date=sunday.isoformat(), timezone=NEW_YORK, day_offset=0, hour_offset=NEW_YORK_CLOSE_HOUR,
        end_offset=1,
    )


_PARTITIONS = {
    Timeframe.W1: weekly_partitions,
    Timeframe.D1_NY: new_york_daily_partitions,
    Timeframe.W1_NY: new_york_weekly_partitions,
}


def partitions_for(start: dt.date, timeframe: Timeframe) -> TimeWindowPartitionsDefinition:
    return _PARTITIONS.get(timeframe, daily_partitions)(start)


def partition_key_of(timeframe: Timeframe, bar_start: pd.Timestamp) -> str:
    """The key of the partition holding the bar that contains `bar_start`: the date of the bar's
    start, in New York for the New York timeframes and in UTC for the others."""
    start = pd.Timestamp(timeframe.floor(bar_start))
    return (start.tz_convert(NEW_YORK) if timeframe.is_new_york else start).date().isoformat()


def window_bounds(window) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A Dagster time window as UTC timestamps."""
    return pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")


def plan_timeframes(spec: SymbolSpec, timeframes: Sequence[Timeframe]) -> list[Timeframe]:
    """The requested timeframes plus every series a derived one is resampled from (the base, and
    D1 for a W1 built from the stored day bars), in dependency order."""
    wanted = {tf for tf in timeframes if tf in spec.timeframes}
    while more := {source for tf in wanted if (source := spec.derived_from(tf)) is not None} - wanted:
        wanted |= more  # W1 from D1 from the base: every series on the way
    return sorted(wanted, key=lambda tf: (tf.minutes, tf.is_new_york))


def partition_range(spec: SymbolSpec, tf: Timeframe, start: dt.date, end: dt.date) -> tuple[str, str]:
    """First and last partition keys covering the UTC days start..end (inclusive); for the New York
    timeframes, the trading days (weeks) that overlap those UTC days."""
    pdef = partitions_for(spec.start, tf)
    keys = pdef.get_partition_keys()
    if tf.is_new_york:
        first = partition_key_of(tf, pd.Timestamp(start, tz="UTC"))
        last = partition_key_of(tf, pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(1, "ns"))
    elif tf is Timeframe.W1:
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
    out: list[PlannedRange] = []
    for spec in specs:
        ranges = [PlannedRange(spec, tf, *partition_range(spec, tf, start, end)) for tf in plan_timeframes(spec, timeframes)]
        out.extend(_base_covering_new_york(spec, ranges))
    return out


def _base_covering_new_york(spec: SymbolSpec, ranges: list[PlannedRange]) -> list[PlannedRange]:
    """The ranges with the base's (and its job's, which shares its partitions and run) widened to
    the UTC days of every New York session in them.

    A New York day starts at 21:00 or 22:00 UTC the day before its close, so the sessions touching
    UTC days start..end need base bars from the evening before `start`; without them the first
    D1_NY (and W1_NY) bar would be resampled from part of its session. The range is not widened past
    `end`: the session open at its end is built from the bars up to it, as a forming bar, and the
    next refresh of those days completes it (widening would fetch days nobody asked for, today's
    unfinished one included).
    """
    spans = [_new_york_days(r) for r in ranges if r.timeframe.is_new_york]
    base = spec.base_timeframe
    if not spans:
        return ranges
    base_partitions = partitions_for(spec.start, base)
    keys = base_partitions.get_partition_keys()
    out: list[PlannedRange] = []
    for r in ranges:
        if partitions_for(spec.start, r.timeframe) is base_partitions:
            first = max(min([r.first, *(a for a, _ in spans)]), keys[0])
            last = r.last  # never past the asked days: the session still open at their end is a forming bar
            r = PlannedRange(spec, r.timeframe, first, last)
        out.append(r)
    return out


def _new_york_days(r: PlannedRange) -> tuple[str, str]:
    """The UTC days (first, last) a range of New York partitions spans."""
    pdef = partitions_for(r.spec.start, r.timeframe)
    first = pdef.time_window_for_partition_key(r.first)
    last = pdef.time_window_for_partition_key(r.last)
    start, _ = window_bounds(first)
    _, end = window_bounds(last)
    return start.date().isoformat(), (end - pd.Timedelta(1, "ns")).date().isoformat()


# Derived timeframes with partitions (and jobs) of their own: a run of their base's job cannot
# hold them, so schedules and the gap fill rebuild them in runs of their own.
OWN_PARTITION_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.W1, Timeframe.D1_NY, Timeframe.W1_NY)


def covering_partitions(specs: list[SymbolSpec], timeframe: Timeframe, first_day: dt.date, last_day: dt.date
                        ) -> tuple[dt.date, dt.date]:
    """The dates naming the first and last partitions of `timeframe` that overlap the UTC days
    first_day..last_day, clipped to the history of `specs` (which share one job, so one start)."""
    start = specs[0].start
    first, last = partition_range(specs[0], timeframe, max(first_day, start), max(last_day, start))
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)
