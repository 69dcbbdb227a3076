"""Bars as one Arrow table of fixed types, what both fast read paths return, and the `read` frame made from it.

Arrow carries NULLs natively, as a validity bitmap beside each column, so a missing vwap or
trades needs no flag column on the wire and becomes pandas' NaN or `Int64` NA without per-value
work. Both backends' tables are cast to one schema (nanosecond UTC timestamps, float64, int64,
string, bool), so nothing above the store can tell which database the bars came from, and an
instant pandas cannot hold (outside 1677-2262) is an error naming the column instead of a
wrapped-around date.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from massive_pipeline.store.bar_query import CODE, BarQuery
from massive_pipeline.store.errors import StoreError

TIMESTAMP = pa.timestamp("ns", tz="UTC")
ARROW_TYPES: dict[str, pa.DataType] = {
    CODE: pa.int32(),
    "ts": TIMESTAMP,
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.float64(),
    "vwap": pa.float64(),
    "trades": pa.int64(),
    "source": pa.string(),
    "ingested_at": TIMESTAMP,
    "complete": pa.bool_(),
}
# pandas' nullable integer for trades, as the `read` frame has always had it.
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype()}


def bar_schema(columns: Sequence[str], *, multi: bool = False) -> pa.Schema:
    """The columns a read returns: `code` (multi-symbol reads only), `ts`, then the asked value `columns`."""
    names = ([CODE] if multi else []) + ["ts", *columns]
    return pa.schema([pa.field(n, ARROW_TYPES[n]) for n in names])


def query_schema(query: BarQuery) -> pa.Schema:
    """The table a read of `query` returns."""
    return bar_schema(query.columns, multi=query.multi)


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """`table`'s columns, in order, named and typed as `schema` says."""
    try:
        return table.rename_columns(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise StoreError(f"{where}: the bars read do not fit the store's column types: {err}") from err


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """Strings as an object array, each distinct value built once (a series has one or two sources)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return labels[encoded.indices.to_numpy()]


def to_frame(table: pa.Table, drop: Sequence[str] = (CODE,)) -> pd.DataFrame:
    """The table as the `read` frame: UTC `datetime64[ns]`, float64 (NaN vwap), `Int64` trades, object source, bool."""
    names = [n for n in table.column_names if n not in drop]
    plain = table.select([n for n in names if n != "source"])
    frame = plain.to_pandas(types_mapper=_PANDAS_TYPES.get, split_blocks=True)
    if "source" in names:
        frame.insert(names.index("source"), "source", _strings(table.column("source")))
    return frame
