"""Partition keys and windows of the candle series, computed instead of enumerated.

Dagster enumerates a time-window partitions definition through a cron iterator, some 70 µs a key;
a plan of the catalog asks for about 300,000 keys and windows, which took half a minute. The
UTC series' partitions are plain arithmetic (`candles/partitions.py`: a key is the UTC date of
its window's start, a day long, or the Monday of a week), so they are computed here; the New York
series, whose windows follow that city's clock, still ask Dagster. A test holds both to the
partitions definitions.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from massive_pipeline.candles.partitions import partition_range, partitions_for, window_bounds
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe

_DAY = dt.timedelta(days=1)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def keys_between(spec: SymbolSpec, tf: Timeframe, first_day: dt.date, last_day: dt.date) -> list[str]:
    """The partition keys covering the UTC days first..last, clipped to the history's start."""
    if tf.is_new_york:
        first, last = partition_range(spec, tf, first_day, last_day)
        keys = partitions_for(spec.start, tf).get_partition_keys()
        return keys[keys.index(first): keys.index(last) + 1]
    if tf.is_weekly:
        day, end, step = _monday(max(first_day, spec.start)), _monday(last_day), dt.timedelta(days=7)
    else:
        day, end, step = max(first_day, spec.start), last_day, _DAY
    out: list[str] = []
    while day <= end:
        out.append(day.isoformat())
        day += step
    return out


def key_window(spec: SymbolSpec, tf: Timeframe, key: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC window [start, end) of one partition."""
    if tf.is_new_york:
        return window_bounds(partitions_for(spec.start, tf).time_window_for_partition_key(key))
    start = pd.Timestamp(key, tz="UTC")
    return start, start + pd.Timedelta(days=7 if tf.is_weekly else 1)
