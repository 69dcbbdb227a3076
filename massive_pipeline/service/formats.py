"""The four answers of `GET /candles`: JSON, CSV, Parquet and Arrow, same columns in the same order.

Columns: `ts`, `open`, `high`, `low`, `close`, `volume`, then the rest of what the store keeps
(`vwap`, `trades`, `source`, `ingested_at`, `complete`). JSON and CSV carry times as ISO 8601 UTC
text (`2026-10-01T13:05:00Z`; `ingested_at` to the millisecond) and floats as Python's shortest
exact repr, so a client parses back exactly the stored values. Parquet and Arrow keep the native
types: timestamps in UTC microseconds, nullable integer trades, booleans.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LEADING = ("ts", "open", "high", "low", "close", "volume")
TIME_COLUMNS = ("ts", "ingested_at")


class CandleFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    CandleFormat.JSON: "application/json",
    CandleFormat.CSV: "text/csv; charset=utf-8",
    CandleFormat.PARQUET: "application/vnd.apache.parquet",
    CandleFormat.ARROW: "application/vnd.apache.arrow.stream",
}


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """The OHLCV columns first, then the others in the store's order."""
    return frame[[*LEADING, *(c for c in frame.columns if c not in LEADING)]]


def iso_utc(values: pd.Series, *, milliseconds: bool) -> list[str | None]:
    """UTC timestamps as ISO 8601 text ending in Z; None for a missing one (numpy formats them, fast)."""
    unit = "ms" if milliseconds else "s"
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(f"datetime64[{unit}]")
    return [None if v == "NaT" else f"{v}Z" for v in naive.astype(str).tolist()]


def _column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as JSON-ready Python values (NaN, infinities and NA as None)."""
    series = frame[name]
    if name in TIME_COLUMNS:
        return iso_utc(series, milliseconds=name != "ts")
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype="float64")
        if np.isfinite(values).all():
            return values.tolist()
        return [v if math.isfinite(v) else None for v in values.tolist()]
    return series.astype(object).where(series.notna(), None).tolist()


def text_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Every column of `frame` (ordered) as JSON-ready values."""
    frame = ordered(frame)
    return {name: _column_values(frame, name) for name in frame.columns}


def render_json(frame: pd.DataFrame, envelope: Mapping[str, Any]) -> bytes:
    """`envelope` plus `bars`, one object per bar."""
    columns = text_columns(frame)
    bars = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    # orjson writes each float as its shortest exact repr, like `json`, about ten times faster
    return orjson.dumps({**envelope, "bars": bars})


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def render_csv(frame: pd.DataFrame) -> bytes:
    """A header line, then one line per bar; an empty cell is a missing value."""
    columns = text_columns(frame)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(v) for v in row] for row in zip(*columns.values(), strict=True))
    return out.getvalue().encode()


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    frame = ordered(frame).copy()
    for name in TIME_COLUMNS:
        frame[name] = frame[name].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return pa.Table.from_pandas(frame, preserve_index=False)


def render_parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(arrow_table(frame), sink)
    return sink.getvalue()


def render_arrow(frame: pd.DataFrame) -> bytes:
    table = arrow_table(frame)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def render(frame: pd.DataFrame, fmt: CandleFormat, envelope: Mapping[str, Any]) -> bytes:
    """The answer's body; JSON wraps the bars in `envelope` (the other formats carry it in headers)."""
    if fmt is CandleFormat.JSON:
        return render_json(frame, envelope)
    if fmt is CandleFormat.CSV:
        return render_csv(frame)
    if fmt is CandleFormat.PARQUET:
        return render_parquet(frame)
    return render_arrow(frame)
