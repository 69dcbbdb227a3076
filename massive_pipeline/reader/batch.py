"""One page of candles as numpy columns: the form both backends decode into and every output is built from.

Keeping a page as plain arrays (symbol codes, int64 nanosecond timestamps, float/int values
with explicit NULL masks) lets the PostgreSQL and SQLite paths share one set of frame builders
and one keyset driver, and lets pages be concatenated without going through pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Columns that may be NULL in the store; each has a boolean mask in `Batch.nulls`.
NULLABLE: tuple[str, ...] = ("vwap", "trades")
DTYPES: dict[str, str] = {
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "volume": "float64",
    "vwap": "float64",
    "trades": "int64",
    "source": "object",
    "ingested_at": "int64",
    "complete": "bool",
}


@dataclass(frozen=True)
class Batch:
    """Rows sorted by (symbol, ts): `codes` index `symbols`; timestamps are epoch nanoseconds UTC."""

    symbols: tuple[str, ...]
    codes: np.ndarray
    ts_ns: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    nulls: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def present_codes(self) -> set[int]:
        """Which symbols have at least one row in this batch (rows are grouped by symbol)."""
        if not len(self):
            return set()
        starts = np.flatnonzero(np.diff(self.codes, prepend=self.codes[0] - 1))
        return {int(c) for c in self.codes[starts]}

    def head(self, n: int) -> Batch:
        """The first `n` rows (views, no copy)."""
        return Batch(
            symbols=self.symbols,
            codes=self.codes[:n],
            ts_ns=self.ts_ns[:n],
            values={c: v[:n] for c, v in self.values.items()},
            nulls={c: v[:n] for c, v in self.nulls.items()},
        )

    def symbol_at(self, row: int) -> str:
        return self.symbols[int(self.codes[row])]

    @classmethod
    def empty(cls, symbols: tuple[str, ...], columns: Sequence[str]) -> Batch:
        return cls(
            symbols=symbols,
            codes=np.empty(0, dtype=np.int32),
            ts_ns=np.empty(0, dtype=np.int64),
            values={c: np.empty(0, dtype=DTYPES[c]) for c in columns},
            nulls={c: np.empty(0, dtype=bool) for c in columns if c in NULLABLE},
        )
