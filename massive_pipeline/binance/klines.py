"""Binance's kline arrays as the pipeline's bar columns (pure: decoded JSON in, a frame out).

A klines answer is a JSON array of arrays,
`[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades, ...]`,
prices and volumes as decimal strings. The bar's `ts` is the open time; `vwap` is quote volume
over volume (what Binance's volume-weighted price is), NaN for a kline without volume. A row that
does not have that shape raises `KlineShapeError` with the row and the field, which the client
turns into one line naming the symbol: unlike Massive's null fields, Binance never sends a
partial row, so one means the answer is not what the API promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from massive_pipeline.massive.models import FETCHED_COLUMNS, PROBLEM_COLUMN, empty_bars

MIN_FIELDS = 9
_PRICE_FIELDS = ((1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume"), (7, "quoteVolume"))


class KlineShapeError(ValueError):
    """A klines answer that decoded as JSON but is not an array of kline arrays."""


@dataclass(frozen=True)
class KlinePage:
    """One answer's klines: bar columns, and the close time of each (ms) to judge the forming one."""

    bars: pd.DataFrame
    open_ms: np.ndarray
    close_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.open_ms)


def _int(row: list[Any], index: int, name: str, i: int) -> int:
    value = row[index]
    if isinstance(value, bool) or not isinstance(value, int):
        raise KlineShapeError(f"kline {i} has {name} {value!r:.40}, not an integer of milliseconds")
    return value


def _decimal(row: list[Any], index: int, name: str, i: int) -> float:
    value = row[index]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise KlineShapeError(f"kline {i} has {name} {value!r:.40}, not a decimal string")
    try:
        number = float(value)
    except ValueError:
        raise KlineShapeError(f"kline {i} has {name} {value!r:.40}, not a decimal string") from None
    if not math.isfinite(number):
        raise KlineShapeError(f"kline {i} has {name} {value!r:.40}, not a finite number")
    return number


def parse_klines(body: Any) -> KlinePage:
    """Convert one klines answer; raises `KlineShapeError` naming the first thing that is wrong."""
    if not isinstance(body, list):
        raise KlineShapeError(f"the body is a JSON {type(body).__name__}, not an array of klines")
    if not body:
        return KlinePage(empty_bars(), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    n = len(body)
    opened = np.empty(n, dtype=np.int64)
    closed = np.empty(n, dtype=np.int64)
    trades = np.empty(n, dtype=np.int64)
    values = np.empty((n, len(_PRICE_FIELDS)), dtype=np.float64)
    for i, row in enumerate(body):
        if not isinstance(row, list) or len(row) < MIN_FIELDS:
            what = f"{len(row)} fields" if isinstance(row, list) else f"a JSON {type(row).__name__}"
            raise KlineShapeError(f"kline {i} is {what}, not an array of at least {MIN_FIELDS} fields")
        opened[i] = _int(row, 0, "openTime", i)
        closed[i] = _int(row, 6, "closeTime", i)
        trades[i] = _int(row, 8, "trades", i)
        for j, (index, name) in enumerate(_PRICE_FIELDS):
            values[i, j] = _decimal(row, index, name, i)
    volume, quote = values[:, 4], values[:, 5]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, quote / np.where(volume > 0, volume, 1.0), np.nan)
    frame = pd.DataFrame({
        "ts": pd.to_datetime(opened, unit="ms", utc=True).astype("datetime64[ns, UTC]"),
        "open": values[:, 0], "high": values[:, 1], "low": values[:, 2], "close": values[:, 3],
        "volume": volume, "vwap": vwap,
        "trades": pd.array(trades, dtype="Int64"),
        PROBLEM_COLUMN: pd.Series([None] * n, dtype=object),
    })
    return KlinePage(frame[list(FETCHED_COLUMNS)], opened, closed)
