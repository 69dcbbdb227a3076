"""Frames and timestamps as JSON values, the one way the service writes them.

Times are ISO 8601 UTC ending in `Z`; NaN, NA and NaT are `null`; numpy scalars become Python
numbers, so `json` writes them exactly.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def iso(ts: Any) -> str | None:
    """A UTC instant as ISO 8601 text ending in Z (None and NaT become None)."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def seconds(delta: pd.Timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def json_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return iso(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON object per row, in the frame's column order."""
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]
