"""Bars as one Arrow table of fixed types, what both fast read paths return, and the frames made from it.

Arrow carries NULLs natively, as a validity bitmap beside each column, so a missing vwap or
trades needs no flag column on the wire and becomes pandas' NaN or `Int64` NA without per-value
work. Both backends' tables have one schema (float64, int64, string, bool, UTC timestamps), so
nothing above the store can tell which database the bars came from. Timestamps keep the unit
the backend stores (microseconds on PostgreSQL, milliseconds on SQLite) until a frame is made:
converting to nanoseconds there is one pass instead of two, and an instant pandas cannot hold
(outside 1677-2262) is then an error naming the column instead of a wrapped-around date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from massive_pipeline.store.bar_query import CODE, BarQuery
from massive_pipeline.store.errors import StoreError

TIMESTAMPS: tuple[str, ...] = ("ts", "ingested_at")
ARROW_TYPES: dict[str, pa.DataType] = {
    CODE: pa.int32(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.float64(),
    "vwap": pa.float64(),
    "trades": pa.int64(),
    "source": pa.string(),
    "complete": pa.bool_(),
}
# pandas' nullable integer for trades, as the `read` frame has always had it.
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype()}
_NS = pa.timestamp("ns", tz="UTC")


def bar_schema(columns: Sequence[str], *, multi: bool = False, unit: str = "us") -> pa.Schema:
    """The columns a read returns: `code` (multi-symbol reads only), `ts`, then the asked value `columns`."""
    names = ([CODE] if multi else []) + ["ts", *columns]
    stamp = pa.timestamp(unit, tz="UTC")
    return pa.schema([pa.field(n, stamp if n in TIMESTAMPS else ARROW_TYPES[n]) for n in names])


def query_schema(query: BarQuery, unit: str) -> pa.Schema:
    """The table a read of `query` returns, with timestamps in `unit`."""
    return bar_schema(query.columns, multi=query.multi, unit=unit)


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """`table`'s columns, in order, named and typed as `schema` says (a no-op cast for what the drivers give)."""
    try:
        return table.rename_columns(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise StoreError(f"{where}: the bars read do not fit the store's column types: {err}") from err


def _out_of_range(table: pa.Table, err: Exception) -> StoreError:
    for name in TIMESTAMPS:
        if name in table.column_names:
            try:
                table.column(name).cast(_NS)
            except pa.ArrowInvalid:
                break
    else:
        name = "a timestamp column"
    return StoreError(
        f"column {name!r} holds timestamps outside 1677-2262, which pandas cannot represent ({err})"
    )


def with_ns_timestamps(table: pa.Table) -> pa.Table:
    """The table with nanosecond UTC timestamps (what pandas and polars hold), the other columns untouched."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        try:
            columns.append(column.cast(_NS) if name in TIMESTAMPS else column)
        except pa.ArrowInvalid as err:
            raise _out_of_range(table, err) from err
    return pa.table(columns, names=table.column_names)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """Strings as an object array, each distinct value built once (a series has one or two sources)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return labels[encoded.indices.to_numpy()]


def to_frame(table: pa.Table, leading: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The table (without `code`) as the `read` frame, after the `leading` columns.

    UTC `datetime64[ns]`, float64 (NaN where vwap is NULL), `Int64` trades, object source, bool.
    Built column by column without consolidating blocks, so no value is copied twice.
    """
    names = [n for n in table.column_names if n != CODE]
    try:
        plain = table.select([n for n in names if n != "source"]).to_pandas(
            types_mapper=_PANDAS_TYPES.get, split_blocks=True, coerce_temporal_nanoseconds=True
        )
    except pa.ArrowInvalid as err:
        raise _out_of_range(table, err) from err
    columns: dict[str, object] = dict(leading or {})
    for name in names:
        columns[name] = _strings(table.column(name)) if name == "source" else plain[name]
    return pd.DataFrame(columns, copy=False)
