"""Bars that pass every schema rule yet look wrong: isolated price spikes and frozen prices.

Both detectors are vectorized over the whole window of a run, so the rolling statistics see the
bars around a partition's edges too.

A spike is judged robustly: the log-return of the close is compared with the rolling median of
returns, in units of the rolling median absolute deviation (× 1.4826, the robust standard
deviation). A single bad print jumps away and comes straight back, so a bar is a spike only when
its return and the next one both lie beyond `k` units in opposite directions. A volatile day
widens the rolling MAD with it, and a genuine level shift (a news jump that holds) does not come
back, so neither is flagged. The last bar of a window cannot be confirmed and is not judged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826
SPIKE_COLUMNS = ("ts", "close", "prev_close", "next_close", "log_return", "robust_z")
STALE_COLUMNS = ("first_bar", "last_bar", "bars", "close")


def find_spikes(bars: pd.DataFrame, k: float, window: int) -> pd.DataFrame:
    """Bars whose close is an isolated outlier (columns SPIKE_COLUMNS), sorted by ts."""
    empty = pd.DataFrame({c: pd.Series([], dtype="float64") for c in SPIKE_COLUMNS})
    empty["ts"] = pd.Series([], dtype="datetime64[ns, UTC]")
    if len(bars) < 3:
        return empty
    close = bars["close"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.diff(np.log(close))  # r[j] is the return into bar j + 1
    returns = pd.Series(r)
    min_periods = max(5, window // 3)
    med = returns.rolling(window, center=True, min_periods=min_periods).median()
    mad = (returns - med).abs().rolling(window, center=True, min_periods=min_periods).median()
    overall = float(np.nanmedian(np.abs(r - np.nanmedian(r)))) if np.isfinite(r).any() else 0.0
    # a flat stretch has MAD 0; a floor keeps one tick of movement from counting as infinite
    scale = np.maximum(MAD_TO_SIGMA * mad.to_numpy(), MAD_TO_SIGMA * overall * 0.1)
    scale = np.where(scale > 0, scale, np.nan)
    z = (r - med.to_numpy()) / scale
    # bar i (1..n-2) is a spike when the return into it (z[i-1]) and out of it (z[i]) both exceed k
    z_in, z_out = z[:-1], (r[1:] - med.to_numpy()[:-1]) / scale[:-1]
    spike = (np.abs(z_in) > k) & (np.abs(z_out) > k) & (np.sign(z_in) != np.sign(z_out))
    idx = np.flatnonzero(np.nan_to_num(spike, nan=0.0).astype(bool)) + 1
    if len(idx) == 0:
        return empty
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(bars["ts"]).tz_convert("UTC")[idx],
            "close": close[idx],
            "prev_close": close[idx - 1],
            "next_close": close[idx + 1],
            "log_return": r[idx - 1],
            "robust_z": z_in[idx - 1],
        }
    )


def find_stale_runs(bars: pd.DataFrame, min_bars: int) -> pd.DataFrame:
    """Runs of at least `min_bars` consecutive bars with the same close (columns STALE_COLUMNS).

    Bars exist only while the market trades, so a run never counts a closed market.
    """
    out = pd.DataFrame(
        {
            "first_bar": pd.Series([], dtype="datetime64[ns, UTC]"),
            "last_bar": pd.Series([], dtype="datetime64[ns, UTC]"),
            "bars": pd.Series([], dtype="int64"),
            "close": pd.Series([], dtype="float64"),
        }
    )
    n = len(bars)
    if n < min_bars:
        return out
    close = bars["close"].to_numpy(dtype="float64")
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = close[1:] != close[:-1]
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, n))
    keep = lengths >= min_bars
    if not keep.any():
        return out
    first, length = starts[keep], lengths[keep]
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC")
    return pd.DataFrame(
        {"first_bar": ts[first], "last_bar": ts[first + length - 1], "bars": length.astype("int64"), "close": close[first]}
    )
