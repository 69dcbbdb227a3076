"""Features of a bar series: log returns, realized volatility and the average true range.

Pure functions of a frame of bars (no Dagster, no I/O), so they are tested on crafted frames
and a user can call them on any `CandleStore.read` frame.

Every feature is a fixed number of bars wide, so its value at a bar depends only on that bar and
a known number of bars before it (`FeatureParams.warmups`). That is what makes a partition
computable on its own: given that many bars before it (the IO manager's `lookback_bars`), the
features of one day equal those of the same day computed over the whole history. The ATR is
therefore the simple mean of the true range over `atr_period` bars, not Wilder's recursive
smoothing, whose value depends on every bar since the start of the series.

Windows count bars, not time: a forex return across a weekend is Friday's last close to
Sunday's first, as a trader holding the position would see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURE_COLUMNS: tuple[str, ...] = ("log_return", "realized_vol", "atr")


@dataclass(frozen=True)
class FeatureParams:
    """Window sizes, in bars: realized volatility over `vol_window` returns, ATR over `atr_period`."""

    vol_window: int = 24
    atr_period: int = 14

    def __post_init__(self) -> None:
        for name in ("vol_window", "atr_period"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FeatureParams.{name} must be a positive integer, got {value!r}")

    def warmups(self) -> dict[str, int]:
        """Per feature, how many bars at the start of a series have no value: a return needs the
        previous close; the volatility `vol_window` returns; the ATR `atr_period` true ranges,
        each needing the previous close."""
        return {"log_return": 1, "realized_vol": self.vol_window, "atr": self.atr_period}

    @property
    def warmup(self) -> int:
        """Bars before a partition that make every feature defined from its first bar."""
        return max(self.warmups().values())


def compute_features(bars: pd.DataFrame, params: FeatureParams) -> pd.DataFrame:
    """`ts` and the features of each bar of `bars` (sorted by ts, the store's columns)."""
    missing = [c for c in ("ts", "high", "low", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {', '.join(missing)} needed for the features")
    close = bars["close"].astype("float64").reset_index(drop=True)
    high = bars["high"].astype("float64").reset_index(drop=True)
    low = bars["low"].astype("float64").reset_index(drop=True)
    prev_close = close.shift(1)
    log_return = np.log(close / prev_close)
    # a rolling sum of squares may land a hair below zero in floating point; it is never negative
    squares = log_return.pow(2).rolling(params.vol_window, min_periods=params.vol_window).sum()
    realized_vol = np.sqrt(squares.clip(lower=0.0))
    ranges = pd.concat([high - low, (high - prev_close).abs(), (low - prev_close).abs()], axis=1)
    true_range = ranges.max(axis=1, skipna=False)
    atr = true_range.rolling(params.atr_period, min_periods=params.atr_period).mean()
    return pd.DataFrame(
        {
            "ts": bars["ts"].reset_index(drop=True),
            "log_return": log_return,
            "realized_vol": realized_vol,
            "atr": atr,
        }
    )
