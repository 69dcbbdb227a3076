"""Timestamps as the whole pipeline speaks them: UTC instants, naive values read as UTC."""

from __future__ import annotations

from typing import Any

import pandas as pd


def to_utc(value: Any, name: str) -> pd.Timestamp:
    """`value` as a UTC `pd.Timestamp`; a bad or missing value is an error naming `name`."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a timestamp: {value!r}") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} is not a timestamp: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
