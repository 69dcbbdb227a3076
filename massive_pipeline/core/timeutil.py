"""Timestamps as the whole pipeline speaks them: UTC instants, naive values read as UTC.

The one time helper of the project: the client, the calendars, the store and the bundled server
all turn their timestamp arguments into `pd.Timestamp`s in UTC through `to_utc`, so a naive value
means the same instant everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

_TIMESTAMP_TYPES = (pd.Timestamp, dt.datetime, dt.date, np.datetime64, str)


def to_utc(value: Any, name: str) -> pd.Timestamp:
    """`value` as a UTC `pd.Timestamp`; a bad or missing value is an error naming `name`.

    Only timestamp-like values are taken (a timestamp, datetime, date, numpy datetime or ISO
    string): an integer would be read as nanoseconds since the epoch, a silent bug.
    """
    if not isinstance(value, _TIMESTAMP_TYPES):
        raise TypeError(f"{name} must be a pandas Timestamp or datetime, got {type(value).__name__}: {value!r}")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a timestamp: {value!r} ({exc})") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} is not a timestamp: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
