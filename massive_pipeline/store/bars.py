"""Validation of a window of bars and its conversion to column arrays for the bulk writers.

Everything here is vectorized: a backfill writes millions of bars and a per-row Python loop
would cost more than the database itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from massive_pipeline.store.epochs import NS_PER_MS

REQUIRED_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("vwap", "trades")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_SHOWN = 5


@dataclass(frozen=True)
class BarArrays:
    """One window of bars as numpy columns, sorted by `ts_ns`.

    `vwap` holds NaN and `trades` holds 0 where the value is missing; `vwap_null` and
    `trades_null` say where.
    """

    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    vwap_null: np.ndarray
    trades: np.ndarray
    trades_null: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    def take(self, mask: np.ndarray) -> BarArrays:
        """The bars where `mask` is True (all of them when it is all True, without copying)."""
        if mask.all():
            return self
        return BarArrays(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})

    def values(self) -> dict[str, np.ndarray]:
        """OHLCV columns by name, as the merge rules compare them."""
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume}

    @property
    def first_ts(self) -> pd.Timestamp | None:
        return pd.Timestamp(int(self.ts_ns[0]), tz="UTC") if len(self) else None

    @property
    def last_ts(self) -> pd.Timestamp | None:
        return pd.Timestamp(int(self.ts_ns[-1]), tz="UTC") if len(self) else None


def _show(ts_ns: np.ndarray) -> str:
    shown = ", ".join(str(pd.Timestamp(int(v), tz="UTC")) for v in ts_ns[:_SHOWN])
    more = f" and {len(ts_ns) - _SHOWN} more" if len(ts_ns) > _SHOWN else ""
    return shown + more


def _timestamps(ts: pd.Series, label: str) -> np.ndarray:
    if ts.empty:  # "no bars in this window" may come as an untyped empty frame
        return np.empty(0, dtype=np.int64)
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"{label}: column 'ts' must hold timezone-aware UTC timestamps, got dtype {ts.dtype}"
        )
    if ts.isna().any():
        raise ValueError(f"{label}: column 'ts' has {int(ts.isna().sum())} missing timestamps")
    ns = pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8
    not_ms = ns % NS_PER_MS != 0
    if not_ms.any():
        raise ValueError(f"{label}: timestamps must be whole milliseconds: {_show(ns[not_ms])}")
    return ns


def _floats(bars: pd.DataFrame, column: str, label: str) -> np.ndarray:
    try:
        return pd.to_numeric(bars[column], errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{label}: column {column!r} is not numeric ({err})") from err


def _trades(bars: pd.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray]:
    if "trades" not in bars.columns:
        n = len(bars)
        return np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)
    column = bars["trades"]
    if pd.api.types.is_integer_dtype(column.dtype):
        null = column.isna().to_numpy()
        return column.to_numpy(dtype="int64", na_value=0), null
    values = _floats(bars, "trades", label)
    null = np.isnan(values)
    if (values[~null] != np.round(values[~null])).any():
        raise ValueError(f"{label}: column 'trades' must hold whole numbers")
    if (np.abs(values[~null]) >= 2.0**63).any():
        raise ValueError(f"{label}: column 'trades' has values beyond a 64-bit integer")
    return np.where(null, 0, values).astype("int64"), null


def prepare_bars(bars: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, label: str) -> BarArrays:
    """Check a window of bars and return it as sorted columns; any problem is a ValueError naming it.

    Bars must lie in [start, end), have unique timestamps and complete open/high/low/close/volume
    (a NaN there would violate NOT NULL; price sanity is the quality checks' job, not the store's).
    """
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"{label}: bars must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"{label}: bars lack column(s) {missing}; required {list(REQUIRED_COLUMNS)}")
    ts_ns = _timestamps(bars["ts"], label)
    outside = (ts_ns < start.value) | (ts_ns >= end.value)
    if outside.any():
        raise ValueError(
            f"{label}: {int(outside.sum())} bar(s) outside the window [{start}, {end}): {_show(ts_ns[outside])}"
        )
    order = np.argsort(ts_ns, kind="stable")
    ts_sorted = ts_ns[order]
    dup = ts_sorted[1:] == ts_sorted[:-1]
    if dup.any():
        raise ValueError(f"{label}: duplicate bar timestamps: {_show(np.unique(ts_sorted[1:][dup]))}")
    cols = {c: _floats(bars, c, label)[order] for c in PRICE_COLUMNS}
    for c in PRICE_COLUMNS:
        bad = np.isnan(cols[c])
        if bad.any():
            raise ValueError(f"{label}: column {c!r} has missing values (NaN) at {_show(ts_sorted[bad])}")
    vwap = _floats(bars, "vwap", label)[order] if "vwap" in bars.columns else np.full(len(bars), np.nan)
    trades, trades_null = _trades(bars, label)
    return BarArrays(
        ts_ns=ts_sorted,
        vwap=vwap,
        vwap_null=np.isnan(vwap),
        trades=trades[order],
        trades_null=trades_null[order],
        **cols,
    )
