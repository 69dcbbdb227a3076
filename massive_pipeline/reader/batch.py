"""One page of candles: the store's Arrow table of it, plus the symbol and timestamp of each row as numpy.

The store's bulk read (store/bulk_read_postgres.py, store/bulk_read_sqlite.py) hands each page
over as an Arrow table of fixed types with real NULLs; the reader keeps it as it is, so pages
concatenate without a trip through pandas and every output (pandas, Arrow, polars) is built
from the same columns. Keyset paging and the existence check need only each row's symbol (its
position in the request's sorted symbol list, kept beside the table as an array) and the
timestamp of the row a page stops at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from massive_pipeline.store.bar_query import CODE, BarQuery
from massive_pipeline.store.bar_table import bar_schema


@dataclass(frozen=True)
class Batch:
    """Rows sorted by (symbol, ts): `codes` index `symbols`; `table` the columns (`ts` first).

    `ts_ns` (epoch nanoseconds UTC) may stand in for the table where only the keys matter.
    """

    symbols: tuple[str, ...]
    codes: np.ndarray
    ts_ns: np.ndarray | None = None
    table: pa.Table | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def ts_at(self, row: int) -> pd.Timestamp:
        """The timestamp of one row (a keyset position)."""
        if self.ts_ns is not None:
            return pd.Timestamp(int(self.ts_ns[row]), tz="UTC")
        column = self.table.column("ts")  # type: ignore[union-attr]
        return pd.Timestamp(column[row].value, unit=column.type.unit, tz="UTC")

    @classmethod
    def of(cls, symbols: tuple[str, ...], query: BarQuery, table: pa.Table) -> Batch:
        """A page the store read for `query`, its codes made positions in `symbols` (the whole request's)."""
        if CODE in table.column_names:  # `query.symbols` is the request's list: positions agree
            codes = table.column(CODE).to_numpy().astype(np.int32, copy=False)
            table = table.drop_columns([CODE])
        else:  # one symbol: a single-symbol request, or the continuation of one symbol
            codes = np.full(table.num_rows, symbols.index(query.symbols[0]), dtype=np.int32)
        return cls(symbols, codes, table=table)

    def present_codes(self) -> set[int]:
        """Which symbols have at least one row in this batch (rows are grouped by symbol)."""
        if not len(self):
            return set()
        if len(self.symbols) == 1:
            return {0}
        starts = np.flatnonzero(np.diff(self.codes, prepend=self.codes[0] - 1))
        return {int(c) for c in self.codes[starts]}

    def head(self, n: int) -> Batch:
        """The first `n` rows (views, no copy)."""
        table = None if self.table is None else self.table.slice(0, n)
        return Batch(self.symbols, self.codes[:n], None if self.ts_ns is None else self.ts_ns[:n], table)

    def symbol_at(self, row: int) -> str:
        return self.symbols[int(self.codes[row])]

    @classmethod
    def empty(cls, symbols: tuple[str, ...], columns: Sequence[str]) -> Batch:
        return cls(symbols, np.empty(0, dtype=np.int32), table=bar_schema(columns).empty_table())
