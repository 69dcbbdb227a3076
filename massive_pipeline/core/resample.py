"""Deriving higher timeframes from base bars.

Deriving instead of fetching costs no API requests. Grouping by the timeframe's `floor` (rather
than `DataFrame.resample`) means empty buckets simply do not exist: a closed market yields no bar,
never a zero-volume bar with forward-filled prices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from massive_pipeline.core.timeframes import Timeframe

BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "vwap", "trades"]


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows and the canonical dtypes."""
    return pd.DataFrame(
        {
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{c: pd.Series([], dtype="float64") for c in ("open", "high", "low", "close", "volume", "vwap")},
            "trades": pd.Series([], dtype="Int64"),
        }
    )


def resample_bars(bars: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """Aggregate sorted base bars into `timeframe` bars.

    open first, high max, low min, close last, volume sum, vwap volume-weighted (NaN when no
    base bar carries a vwap or the bucket has no volume), trades summed (NA when none known).
    """
    if bars.empty:
        return empty_bars()
    bars = bars.sort_values("ts")
    bucket = pd.DatetimeIndex(timeframe.floor(pd.DatetimeIndex(bars["ts"])))
    vwap = bars["vwap"].astype("float64")
    volume = bars["volume"].astype("float64")
    has_vwap = vwap.notna() & (volume > 0)
    work = pd.DataFrame(
        {
            "open": bars["open"].to_numpy(),
            "high": bars["high"].to_numpy(),
            "low": bars["low"].to_numpy(),
            "close": bars["close"].to_numpy(),
            "volume": volume.to_numpy(),
            "pv": np.where(has_vwap, vwap * volume, 0.0),
            "pv_volume": np.where(has_vwap, volume, 0.0),
            "trades": bars["trades"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan),
            "trades_known": bars["trades"].notna().to_numpy(),
        },
        index=bucket,
    )
    grouped = work.groupby(level=0, sort=True)
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        pv=("pv", "sum"),
        pv_volume=("pv_volume", "sum"),
        trades=("trades", "sum"),
        trades_known=("trades_known", "any"),
    )
    vw = np.where(out["pv_volume"] > 0, out["pv"] / out["pv_volume"].where(out["pv_volume"] > 0, 1.0), np.nan)
    trades = pd.array(np.where(out["trades_known"], out["trades"], np.nan), dtype="Float64").round().astype("Int64")
    return pd.DataFrame(
        {
            "ts": out.index.tz_convert("UTC") if out.index.tz is not None else out.index.tz_localize("UTC"),
            "open": out["open"].to_numpy(),
            "high": out["high"].to_numpy(),
            "low": out["low"].to_numpy(),
            "close": out["close"].to_numpy(),
            "volume": out["volume"].to_numpy(),
            "vwap": vw,
            "trades": trades,
        }
    ).reset_index(drop=True)
