"""Timestamp conversions shared by the store's SQL and bulk paths.

The store keeps every timestamp as a UTC instant: `timestamptz` on PostgreSQL and integer epoch
milliseconds on SQLite (an integer compares and sorts correctly and costs no parsing). Reads
come back as epoch microseconds from both backends so one vectorized conversion serves both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from massive_pipeline.timeutil import to_utc as _to_utc

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
US_PER_MS = 1_000


def to_utc(value: Any, name: str) -> pd.Timestamp:
    """A scalar timestamp argument as a UTC `pd.Timestamp`.

    Naive values are read as UTC, the pipeline-wide convention (see `massive_pipeline.calendars`).
    """
    if isinstance(value, (pd.Timestamp, datetime, np.datetime64, str)):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} is not a timestamp: {value!r} ({err})") from err
    else:
        raise TypeError(f"{name} must be a pandas Timestamp or datetime, got {type(value).__name__}: {value!r}")
    return _to_utc(ts, name)


def epoch_ms(ts: pd.Timestamp) -> int:
    """Epoch milliseconds of a UTC timestamp, the SQLite storage form (sub-millisecond part dropped)."""
    return ts.value // NS_PER_MS


def us_to_datetimes(values: Any) -> pd.DatetimeIndex:
    """Epoch microseconds (ints, possibly with None) to `datetime64[ns, UTC]`."""
    arr = pd.array(values, dtype="Int64")
    return pd.DatetimeIndex(pd.to_datetime(arr, unit="us", utc=True)).as_unit("ns")
