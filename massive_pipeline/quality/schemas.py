"""Pandera models of a candle series: what a bar must satisfy before anyone trains on it.

`CandleBars` holds the rules every timeframe shares; `candle_model(tf)` adds the grid of one
timeframe (W1 bars start on Monday 00:00 UTC, D1 at midnight UTC, the others on their minute
grid). `DerivedAgreement` checks a derived series against the base bars it was resampled from,
column by column, on a frame that `derived_comparison` lines up.

Check names are stable identifiers: `validation.py` turns them into rejection reasons and
`checks.py` reports them through the Dagster asset check `schema`, counted per rule family (`ohlc`, `grid`, …).
"""

from __future__ import annotations

import functools
from typing import Annotated

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe

UTC_NS = Annotated[pd.DatetimeTZDtype, "ns", "UTC"]
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")

# Relative tolerance when comparing derived bars with their base: both sides are sums and
# extremes of the same doubles, so only the order of a volume sum can differ.
AGREEMENT_RTOL = 1e-9

CHECK_HIGH_GE_LOW = "high_ge_low"
CHECK_HIGH_GE_OPEN_CLOSE = "high_ge_open_close"
CHECK_LOW_LE_OPEN_CLOSE = "low_le_open_close"
CHECK_FINITE = "finite"
CHECK_GRID = "grid_aligned"
CHECK_INCREASING = "ts_increasing"
OHLC_CHECKS: frozenset[str] = frozenset({CHECK_HIGH_GE_LOW, CHECK_HIGH_GE_OPEN_CLOSE, CHECK_LOW_LE_OPEN_CLOSE})


class CandleBars(pa.DataFrameModel):
    """OHLCV bars of one series, any timeframe."""

    ts: Series[UTC_NS] = pa.Field(unique=True, nullable=False, description="bar start, UTC")
    open: Series[float] = pa.Field(gt=0, nullable=False)
    high: Series[float] = pa.Field(gt=0, nullable=False)
    low: Series[float] = pa.Field(gt=0, nullable=False)
    close: Series[float] = pa.Field(gt=0, nullable=False)
    volume: Series[float] = pa.Field(ge=0, nullable=False)

    class Config:
        strict = False  # vwap, trades, source, ingested_at may come along
        coerce = False  # a wrong dtype is a finding, not something to paper over

    @pa.check(*VALUE_COLUMNS, name=CHECK_FINITE)
    def _finite(cls, values: Series[float]) -> Series[bool]:
        return pd.Series(np.isfinite(values.to_numpy(dtype="float64")), index=values.index)

    @pa.check("ts", name=CHECK_INCREASING)
    def _increasing(cls, ts: Series[UTC_NS]) -> Series[bool]:
        ns = ts.to_numpy(dtype="datetime64[ns]").view("int64")
        ok = np.ones(len(ns), dtype=bool)
        ok[1:] = ns[1:] > ns[:-1]
        return pd.Series(ok, index=ts.index)

    # A missing price is the not-null rule's finding; these relations only judge complete bars.
    @pa.dataframe_check(name=CHECK_HIGH_GE_LOW)
    def _high_ge_low(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["high"] >= df["low"]) | _incomplete(df)

    @pa.dataframe_check(name=CHECK_HIGH_GE_OPEN_CLOSE)
    def _high_ge_open_close(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["high"] >= np.maximum(df["open"], df["close"])) | _incomplete(df)

    @pa.dataframe_check(name=CHECK_LOW_LE_OPEN_CLOSE)
    def _low_le_open_close(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["low"] <= np.minimum(df["open"], df["close"])) | _incomplete(df)


def _incomplete(df: pd.DataFrame) -> pd.Series:
    return df[list(PRICE_COLUMNS)].isna().any(axis=1)


@functools.cache
def candle_model(timeframe: Timeframe) -> type[CandleBars]:
    """`CandleBars` plus the bar grid of `timeframe` (one model class per timeframe, cached)."""

    class _TimeframeBars(CandleBars):
        @pa.check("ts", name=CHECK_GRID)
        def _on_grid(cls, ts: Series[UTC_NS]) -> Series[bool]:
            index = pd.DatetimeIndex(ts)
            return pd.Series(np.asarray(timeframe.floor(index) == index), index=ts.index)

    _TimeframeBars.__name__ = _TimeframeBars.__qualname__ = f"{timeframe.value}CandleBars"
    return _TimeframeBars


class DerivedAgreement(pa.DataFrameModel):
    """A derived bar next to the same bucket re-aggregated from the stored base bars.

    Columns `<c>` (stored derived bar) and `<c>_base` (from the base). A derived bar without base
    bars has NaN on the base side, a bucket the base has but the derived series lacks has NaN on
    the derived side: either fails every comparison.
    """

    ts: Series[UTC_NS] = pa.Field(unique=True)

    class Config:
        strict = False

    @pa.dataframe_check(name="open_matches_base")
    def _open(cls, df: pd.DataFrame) -> Series[bool]:
        return _close_to(df, "open")

    @pa.dataframe_check(name="high_matches_base")
    def _high(cls, df: pd.DataFrame) -> Series[bool]:
        return _close_to(df, "high")

    @pa.dataframe_check(name="low_matches_base")
    def _low(cls, df: pd.DataFrame) -> Series[bool]:
        return _close_to(df, "low")

    @pa.dataframe_check(name="close_matches_base")
    def _close(cls, df: pd.DataFrame) -> Series[bool]:
        return _close_to(df, "close")

    @pa.dataframe_check(name="volume_matches_base")
    def _volume(cls, df: pd.DataFrame) -> Series[bool]:
        return _close_to(df, "volume")


def _close_to(df: pd.DataFrame, column: str) -> pd.Series:
    ours = df[column].to_numpy(dtype="float64")
    base = df[f"{column}_base"].to_numpy(dtype="float64")
    return pd.Series(np.isclose(ours, base, rtol=AGREEMENT_RTOL, atol=0.0), index=df.index)


def derived_comparison(derived: pd.DataFrame, base_bars: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """Derived bars with the base bars of each bucket re-aggregated alongside (`<c>_base`)."""
    expected = resample_bars(base_bars, timeframe)
    right = expected[["ts", *VALUE_COLUMNS]].rename(columns={c: f"{c}_base" for c in VALUE_COLUMNS})
    left = derived[["ts", *VALUE_COLUMNS]].reset_index(drop=True)
    return left.merge(right, on="ts", how="outer", sort=True)
