"""Crafted bar frames for the feature tests: known closes, or a seeded random walk."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bars_from(closes: list[float], spread: float = 0.5) -> pd.DataFrame:
    """Hourly bars whose open is the previous close, high/low `spread` around the close."""
    close = np.asarray(closes, dtype="float64")
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-10-05", periods=len(close), freq="1h", tz="UTC"),
            "open": np.concatenate([[close[0]], close[:-1]]),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": 1.0,
        }
    )


def random_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """A random walk of `n` valid hourly bars (high and low enclose open and close)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    frame = bars_from(list(close))
    frame["high"] = np.maximum(frame["open"], close) * (1 + rng.random(n) / 500)
    frame["low"] = np.minimum(frame["open"], close) * (1 - rng.random(n) / 500)
    return frame
