"""Epoch conversions shared by the store's SQL and bulk paths (`to_utc` lives in `core.timeutil`).

The store keeps every timestamp as a UTC instant: `timestamptz` on PostgreSQL and integer epoch
milliseconds on SQLite (an integer compares and sorts correctly and costs no parsing). Reads
come back as epoch microseconds from both backends so one vectorized conversion serves both.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
US_PER_MS = 1_000


def epoch_ms(ts: pd.Timestamp) -> int:
    """Epoch milliseconds of a UTC timestamp, the SQLite storage form (sub-millisecond part dropped)."""
    return ts.value // NS_PER_MS


def us_to_datetimes(values: Any) -> pd.DatetimeIndex:
    """Epoch microseconds (ints, possibly with None) to `datetime64[ns, UTC]`."""
    arr = pd.array(values, dtype="Int64")
    return pd.DatetimeIndex(pd.to_datetime(arr, unit="us", utc=True)).as_unit("ns")
