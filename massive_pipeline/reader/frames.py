"""Batches of numpy columns as the frame a caller asked for: pandas, Arrow or polars.

The pandas frame has the dtypes `CandleStore.read` gives (UTC `datetime64[ns]`, float64, a
nullable `Int64` for trades, object strings, bool), plus `symbol` first, so code written
against one works on the other. Arrow keeps the NULL masks as real nulls and nanosecond UTC
timestamps; polars is built from the Arrow table without copying the columns again, and is an
optional extra whose absence is one clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.errors import POLARS_EXTRA, MissingExtraError

_TIMESTAMP_COLUMNS = ("ts", "ingested_at")


def concat(batches: Sequence[Batch], symbols: tuple[str, ...], columns: Sequence[str]) -> Batch:
    """Several pages as one batch (the pages of one read are already in order)."""
    if not batches:
        return Batch.empty(symbols, columns)
    if len(batches) == 1:
        return batches[0]
    return Batch(
        symbols=symbols,
        codes=np.concatenate([b.codes for b in batches]),
        ts_ns=np.concatenate([b.ts_ns for b in batches]),
        values={c: np.concatenate([b.values[c] for b in batches]) for c in batches[0].values},
        nulls={c: np.concatenate([b.nulls[c] for b in batches]) for c in batches[0].nulls},
    )


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


def _symbol_labels(batch: Batch) -> np.ndarray:
    return np.asarray(batch.symbols, dtype=object)[batch.codes]


def to_pandas(batch: Batch, columns: Sequence[str]) -> pd.DataFrame:
    data: dict[str, Any] = {"symbol": _symbol_labels(batch), "ts": _utc(batch.ts_ns)}
    for c in columns:
        values = batch.values[c]
        if c in _TIMESTAMP_COLUMNS:
            data[c] = _utc(values)
        elif c == "trades":
            data[c] = pd.arrays.IntegerArray(
                np.ascontiguousarray(values, dtype=np.int64), np.ascontiguousarray(batch.nulls[c])
            )
        elif c == "vwap":
            data[c] = np.where(batch.nulls[c], np.nan, values)
        else:
            data[c] = values
    return pd.DataFrame(data, copy=False)


def _arrow_column(batch: Batch, column: str) -> pa.Array:
    values = batch.values[column]
    if column in _TIMESTAMP_COLUMNS:
        return pa.array(np.ascontiguousarray(values, dtype=np.int64), type=pa.timestamp("ns", tz="UTC"))
    if column == "source":
        return pa.array(values, type=pa.string())
    mask = batch.nulls.get(column)
    return pa.array(np.ascontiguousarray(values), mask=None if mask is None else np.ascontiguousarray(mask))


def to_arrow(batch: Batch, columns: Sequence[str]) -> pa.Table:
    symbols = pa.DictionaryArray.from_arrays(
        pa.array(np.ascontiguousarray(batch.codes, dtype=np.int32)),
        pa.array(list(batch.symbols), type=pa.string()),
    ).cast(pa.string())
    arrays = [
        symbols,
        pa.array(np.ascontiguousarray(batch.ts_ns, dtype=np.int64), type=pa.timestamp("ns", tz="UTC")),
    ]
    arrays += [_arrow_column(batch, c) for c in columns]
    return pa.Table.from_arrays(arrays, names=["symbol", "ts", *columns])


def polars_module() -> Any:
    """The polars module, or a `MissingExtraError` naming the extra that installs it."""
    try:
        import polars
    except ImportError:
        raise MissingExtraError("polars", "polars", POLARS_EXTRA) from None
    return polars


def to_polars(batch: Batch, columns: Sequence[str]) -> Any:
    return polars_module().from_arrow(to_arrow(batch, columns))


BUILDERS = {"pandas": to_pandas, "arrow": to_arrow, "polars": to_polars}


def build(batch: Batch, columns: Sequence[str], output: str) -> Any:
    return BUILDERS[output](batch, columns)
