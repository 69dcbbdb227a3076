"""Broker − store price differences on the bars both have, and the offset worth applying.

The founding notes ask for the mean, standard deviation and maximum of the difference over a
window and a price offset to use for execution "when it is above 0.5 pips". Here the bars are
matched by exact UTC bar start (after the server-time offset), the differences are taken for
close (the headline figures) and for open, high and low, in price and in pips of the symbol
(`SymbolSpec.pip`), and `recommended_offset` is the mean close difference when its size exceeds
the threshold: add it to the store's prices to get the broker's. `std` is the population
standard deviation (ddof 0), so one matched bar has std 0 rather than none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRICE_FIELDS: tuple[str, ...] = ("close", "open", "high", "low")
DEFAULT_THRESHOLD_PIPS = 0.5


@dataclass(frozen=True)
class DiffStats:
    """Statistics of broker − store for one price field."""

    mean: float
    std: float
    max_abs: float
    mean_pips: float
    std_pips: float
    max_abs_pips: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PriceComparison:
    """The result of comparing matched bars; `fields` has close, open, high and low."""

    bars_compared: int
    broker_bars: int
    store_bars: int
    period_start: pd.Timestamp | None
    period_end: pd.Timestamp | None
    pip_size: float
    threshold_pips: float
    fields: dict[str, DiffStats]
    recommended_offset: float | None
    daily: pd.DataFrame = field(repr=False)  # day, bars, mean close diff (price and pips)
    # ts, close diff in pips, per matched bar: what the plot draws
    per_bar: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"ts": [], "diff_pips": []}), repr=False)

    @property
    def close(self) -> DiffStats:
        return self.fields["close"]


def _stats(diff: np.ndarray, pip: float) -> DiffStats:
    mean, std, max_abs = float(diff.mean()), float(diff.std()), float(np.abs(diff).max())
    return DiffStats(mean, std, max_abs, mean / pip, std / pip, max_abs / pip)


def compare_prices(
    broker: pd.DataFrame,
    store: pd.DataFrame,
    *,
    pip_size: float,
    threshold_pips: float = DEFAULT_THRESHOLD_PIPS,
) -> PriceComparison:
    """Compare broker bars (`ts` in UTC, OHLC) with store bars (`ts`, OHLC) on their common bar starts.

    No common bar is an error: statistics of nothing would be recorded as if they meant something.
    """
    if not pip_size > 0:
        raise ValueError(f"pip_size must be positive, got {pip_size!r}")
    if not threshold_pips >= 0:
        raise ValueError(f"threshold_pips must be zero or more, got {threshold_pips!r}")
    cols = ["ts", *PRICE_FIELDS]
    joined = broker[cols].merge(store[cols], on="ts", suffixes=("_broker", "_store"), validate="one_to_one")
    joined = joined.sort_values("ts").reset_index(drop=True)
    if joined.empty:
        raise ValueError("the broker's bars and the store's have no bar start in common")
    stats = {
        name: _stats(
            joined[f"{name}_broker"].to_numpy(float) - joined[f"{name}_store"].to_numpy(float), pip_size
        )
        for name in PRICE_FIELDS
    }
    close = stats["close"]
    recommended = close.mean if abs(close.mean_pips) > threshold_pips else None
    close_diff = joined["close_broker"] - joined["close_store"]
    daily = (
        pd.DataFrame({"day": joined["ts"].dt.floor("D"), "diff": close_diff})
        .groupby("day")["diff"]
        .agg(bars="size", mean_diff="mean")
        .reset_index()
    )
    daily["mean_diff_pips"] = daily["mean_diff"] / pip_size
    return PriceComparison(
        bars_compared=len(joined),
        broker_bars=len(broker),
        store_bars=len(store),
        period_start=joined["ts"].iloc[0],
        period_end=joined["ts"].iloc[-1],
        pip_size=pip_size,
        threshold_pips=threshold_pips,
        fields=stats,
        recommended_offset=recommended,
        daily=daily,
        per_bar=pd.DataFrame({"ts": joined["ts"], "diff_pips": close_diff / pip_size}),
    )
