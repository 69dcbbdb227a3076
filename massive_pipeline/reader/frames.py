"""Batches as the frame a caller asked for: pandas, Arrow or polars.

The pandas frame is the store's own `read` frame (store/bar_table.py: UTC `datetime64[ns]`,
float64, a nullable `Int64` for trades, object strings, bool) with `symbol` first, so code
written against `CandleStore.read` works on it. Arrow is the store's table with the `symbol`
column in front: real nulls and nanosecond UTC timestamps, no copy of the value columns. polars
is built from that table without copying the columns again, and is an optional extra whose
absence is one clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.errors import POLARS_EXTRA, MissingExtraError
from massive_pipeline.store.bar_table import to_frame, with_ns_timestamps


def concat(batches: Sequence[Batch], symbols: tuple[str, ...], columns: Sequence[str]) -> Batch:
    """Several pages as one batch (the pages of one read are already in order)."""
    if not batches:
        return Batch.empty(symbols, columns)
    if len(batches) == 1:
        return batches[0]
    return Batch(
        symbols,
        np.concatenate([b.codes for b in batches]),
        table=pa.concat_tables([b.table for b in batches]),
    )


def to_pandas(batch: Batch) -> pd.DataFrame:
    return to_frame(batch.table, leading={"symbol": np.asarray(batch.symbols, dtype=object)[batch.codes]})


def to_arrow(batch: Batch) -> pa.Table:
    symbols = pa.DictionaryArray.from_arrays(
        pa.array(np.ascontiguousarray(batch.codes, dtype=np.int32)),
        pa.array(list(batch.symbols), type=pa.string()),
    ).cast(pa.string())
    return with_ns_timestamps(batch.table).add_column(0, "symbol", symbols)


def polars_module() -> Any:
    """The polars module, or a `MissingExtraError` naming the extra that installs it."""
    try:
        import polars
    except ImportError:
        raise MissingExtraError("polars", "polars", POLARS_EXTRA) from None
    return polars


def to_polars(batch: Batch) -> Any:
    return polars_module().from_arrow(to_arrow(batch))


BUILDERS = {"pandas": to_pandas, "arrow": to_arrow, "polars": to_polars}


def build(batch: Batch, output: str) -> Any:
    return BUILDERS[output](batch)
