"""One page of candles: the store's Arrow table of it, plus the symbol and timestamp of each row as numpy.

The store's bulk read (store/bulk_read_postgres.py, store/bulk_read_sqlite.py) hands each page
over as an Arrow table of fixed types with real NULLs; the reader keeps it as it is, so pages
concatenate without a trip through pandas and every output (pandas, Arrow, polars) is built
from the same columns. Keyset paging and the existence check need only each row's symbol (its
position in the request's sorted symbol list) and timestamp, kept beside the table as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from massive_pipeline.store.bar_query import CODE, BarQuery
from massive_pipeline.store.bar_table import bar_schema


@dataclass(frozen=True)
class Batch:
    """Rows sorted by (symbol, ts): `codes` index `symbols`; `ts_ns` epoch nanoseconds UTC; `table` the columns."""

    symbols: tuple[str, ...]
    codes: np.ndarray
    ts_ns: np.ndarray
    table: pa.Table | None = None

    def __len__(self) -> int:
        return len(self.ts_ns)

    @classmethod
    def of(cls, symbols: tuple[str, ...], query: BarQuery, table: pa.Table) -> Batch:
        """A page the store read for `query`, its codes made positions in `symbols` (the whole request's)."""
        if CODE in table.column_names:  # `query.symbols` is the request's list: positions agree
            codes = table.column(CODE).to_numpy().astype(np.int32, copy=False)
            table = table.drop_columns([CODE])
        else:  # one symbol: a single-symbol request, or the continuation of one symbol
            codes = np.full(table.num_rows, symbols.index(query.symbols[0]), dtype=np.int32)
        ts_ns = table.column("ts").cast(pa.int64()).to_numpy()
        return cls(symbols, codes, ts_ns, table)

    def present_codes(self) -> set[int]:
        """Which symbols have at least one row in this batch (rows are grouped by symbol)."""
        if not len(self):
            return set()
        starts = np.flatnonzero(np.diff(self.codes, prepend=self.codes[0] - 1))
        return {int(c) for c in self.codes[starts]}

    def head(self, n: int) -> Batch:
        """The first `n` rows (views, no copy)."""
        table = None if self.table is None else self.table.slice(0, n)
        return Batch(self.symbols, self.codes[:n], self.ts_ns[:n], table)

    def symbol_at(self, row: int) -> str:
        return self.symbols[int(self.codes[row])]

    @classmethod
    def empty(cls, symbols: tuple[str, ...], columns: Sequence[str]) -> Batch:
        return cls(
            symbols,
            np.empty(0, dtype=np.int32),
            np.empty(0, dtype=np.int64),
            bar_schema(columns).empty_table(),
        )
