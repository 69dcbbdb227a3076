"""Cross-checking two sources of one market: a catalog entry's closes against another entry's.

A bar one source has wrong shows up as a divergence from the other. Two sources rarely quote the
same thing exactly (BTCUSD against Binance's BTCUSDT is priced in a stablecoin that sits a little
off the dollar), so a constant basis is estimated first, robustly, as the median of the log ratio
of the closes over the common bars (a few wrong bars cannot move a median), and removed; only then
is each bar judged against the tolerance. Bars still forming are left out on both sides: one
source may hold a minute in progress that the other has already closed.

The figures per partition window: common bars, the basis, the median and largest relative close
difference after the basis, and the bars beyond the tolerance with a sample of the worst. The
tolerance defaults per asset class (`DEFAULT_TOLERANCE`) and is set by `MASSIVE_CROSS_CHECK_TOLERANCE`.
This module holds the arithmetic and the store reads; `quality/checks.py` turns it into Dagster
check evaluations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import MetadataValue

from massive_pipeline.core.catalog import AssetClass, Catalog, SymbolSpec, comparison_timeframe
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.settings import QualitySettingsError
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.store import CandleStore

CROSS_CHECK = "cross_check"
ENV_CROSS_CHECK_TOLERANCE = "MASSIVE_CROSS_CHECK_TOLERANCE"
# Relative close difference (after the basis) beyond which a bar is reported. Spot forex venues agree
# to a pip or two; crypto venues and stablecoin quotes drift apart by tenths of a percent.
DEFAULT_TOLERANCE: Mapping[AssetClass, float] = {
    AssetClass.FOREX: 0.0005,
    AssetClass.METAL: 0.001,
    AssetClass.CRYPTO: 0.005,
    AssetClass.INDEX: 0.001,
}
WORST_BARS_SHOWN = 10
FLAGGED_LISTED = 100
WORST_COLUMNS = ("ts", "close", "other_close", "rel_diff", "over_tolerance")


@dataclass(frozen=True)
class CrossCheck:
    """What an entry's `cross_check` means for its assets: compare `symbol` with `other_symbol` on `timeframe`."""

    symbol: str
    other_symbol: str
    timeframe: Timeframe
    asset_class: AssetClass

    @property
    def description(self) -> str:
        return (f"{self.symbol}'s {self.timeframe.value} closes agree with {self.other_symbol}'s on their common bars "
                "within the tolerance, once a constant basis (median log ratio) is removed.")


def cross_check_of(catalog: Catalog, spec: SymbolSpec) -> CrossCheck | None:
    """The comparison an entry asks for, or None; the catalog has validated that it can be made."""
    if spec.cross_check is None:
        return None
    other = catalog.get(spec.cross_check)
    timeframe = comparison_timeframe(spec, other)
    assert timeframe is not None, "the catalog refuses entries it cannot compare"
    return CrossCheck(spec.symbol, other.symbol, timeframe, spec.asset_class)


# -- tolerance ----------------------------------------------------------------------------------


def _fraction(text: str, what: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise QualitySettingsError(f"{what} must be a fraction such as 0.005 or a percentage such as 0.5%, "
                                   f"got {text.strip()!r}") from None
    if not 0 < value < 1:
        raise QualitySettingsError(f"{what} must be above 0 and below 100%, got {text.strip()!r}")
    return value


def parse_tolerances(text: str) -> dict[str, float]:
    """`"0.5%"` sets every class; `"crypto=0.5%,forex=0.05%,BTCUSD=1%"` sets asset classes and
    single symbols (a symbol's value wins over its class's). Keys upper-case symbols, lower-case classes."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            name, value = "*", name
        key = name.strip()
        if key.lower() in {c.value for c in AssetClass}:
            key = key.lower()
        elif key != "*":
            key = key.upper()
        out[key] = _fraction(value, f"{ENV_CROSS_CHECK_TOLERANCE} ({key})")
    return out


def resolve_tolerance(check: CrossCheck, environ: Mapping[str, str] | None = None) -> tuple[float, str]:
    """The tolerance of one comparison and where it came from (said in the check's metadata)."""
    env = os.environ if environ is None else environ
    given = parse_tolerances(env.get(ENV_CROSS_CHECK_TOLERANCE, ""))
    for key in (check.symbol, check.asset_class.value, "*"):
        if key in given:
            return given[key], f"{ENV_CROSS_CHECK_TOLERANCE} ({key})"
    return DEFAULT_TOLERANCE[check.asset_class], f"default for {check.asset_class.value}"


# -- the comparison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Two series compared over one window; the statistics are None when no bar was common."""

    bars_compared: int
    bars_this: int
    bars_other: int
    basis: float | None  # other / this - 1 at the median log ratio of the closes
    median_rel_diff: float | None
    max_rel_diff: float | None
    bars_over_tolerance: int
    tolerance: float
    bars: pd.DataFrame  # the common bars, worst first: WORST_COLUMNS

    @property
    def flagged(self) -> pd.DataFrame:
        return self.bars[self.bars["over_tolerance"]]


def compare_closes(this: pd.DataFrame, other: pd.DataFrame, tolerance: float) -> Comparison:
    """Compare the closes of the bars both frames (`ts`, `close`) hold.

    The basis b is the median of ln(other / this); each bar's difference is other / (this · e^b) − 1,
    judged by its magnitude against `tolerance`.
    """
    left = this[["ts", "close"]].dropna()
    right = other[["ts", "close"]].dropna().rename(columns={"close": "other_close"})
    common = left.merge(right, on="ts", how="inner")
    common = common[(common["close"] > 0) & (common["other_close"] > 0)]
    if common.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            WORST_COLUMNS, ("datetime64[ns, UTC]", "float64", "float64", "float64", "bool"), strict=True)})
        return Comparison(0, len(this), len(other), None, None, None, 0, tolerance, empty)
    log_ratio = np.log(common["other_close"].to_numpy() / common["close"].to_numpy())
    log_basis = float(np.median(log_ratio))
    rel = np.expm1(log_ratio - log_basis)
    size = np.abs(rel)
    bars = common.assign(rel_diff=rel, over_tolerance=size > tolerance)
    bars = bars.iloc[np.argsort(-size, kind="stable")].reset_index(drop=True)
    return Comparison(
        bars_compared=len(common), bars_this=len(this), bars_other=len(other), basis=float(np.expm1(log_basis)),
        median_rel_diff=float(np.median(size)), max_rel_diff=float(size.max()),
        bars_over_tolerance=int((size > tolerance).sum()), tolerance=tolerance, bars=bars[list(WORST_COLUMNS)],
    )


@dataclass(frozen=True)
class WindowComparison:
    key: str | None  # the partition key (None when the run had no partition)
    start: pd.Timestamp
    end: pd.Timestamp
    comparison: Comparison

    @property
    def partition(self) -> str:
        """The key as recorded: the partition's, or the window's first day when the run had none."""
        return self.key or f"{self.start:%Y-%m-%d}"


def compare_windows(
    store: CandleStore, check: CrossCheck, windows: Sequence[tuple[str | None, pd.Timestamp, pd.Timestamp]],
    tolerance: float,
) -> list[WindowComparison]:
    """Each window's comparison, from both series as stored (complete bars only), read once for all windows."""
    if not windows:
        return []
    lo, hi = windows[0][1], windows[-1][2]
    this = store.read(check.symbol, check.timeframe, lo, hi, include_forming=False)
    other = store.read(check.other_symbol, check.timeframe, lo, hi, include_forming=False)
    out = []
    for key, start, end in windows:
        mine = this[(this["ts"] >= start) & (this["ts"] < end)]
        theirs = other[(other["ts"] >= start) & (other["ts"] < end)]
        out.append(WindowComparison(key, start, end, compare_closes(mine, theirs, tolerance)))
    return out


def record(store: CandleStore, check: CrossCheck, result: WindowComparison, compared_at: pd.Timestamp | None = None) -> bool:
    """Upsert a window's figures into `provider_comparisons`; a window with no common bar is not
    recorded (it says nothing about either source), so it never hides an earlier real verdict."""
    c = result.comparison
    if not c.bars_compared:
        return False
    store.record_provider_comparison(
        check.symbol, check.other_symbol, check.timeframe, result.partition, compared_at=compared_at,
        bars_compared=c.bars_compared, median_rel_diff=c.median_rel_diff, max_rel_diff=c.max_rel_diff,
        bars_over_tolerance=c.bars_over_tolerance, tolerance=c.tolerance, basis=c.basis,
    )
    return True


def describe(check: CrossCheck, c: Comparison) -> tuple[bool, str]:
    """Whether the window passes and the one line the UI shows for it."""
    if not c.bars_compared:
        if not c.bars_other:
            return True, f"{check.other_symbol} has no {check.timeframe.value} bars in this window: nothing compared"
        if not c.bars_this:
            return True, f"no {check.symbol} bars in this window: nothing compared"
        return True, f"{check.symbol} and {check.other_symbol} have no bar start in common here: nothing compared"
    assert c.basis is not None and c.max_rel_diff is not None and c.median_rel_diff is not None
    line = (f"{c.bars_compared} common bars with {check.other_symbol}: basis {c.basis:+.4%}, median difference "
            f"{c.median_rel_diff:.4%}, largest {c.max_rel_diff:.4%}")
    if c.bars_over_tolerance:
        return False, f"{line}; {c.bars_over_tolerance} bar(s) beyond the tolerance of {c.tolerance:.3%}"
    return True, f"{line}; none beyond {c.tolerance:.3%}"


def metadata(check: CrossCheck, c: Comparison, tolerance_source: str) -> dict[str, object]:
    """The check's metadata for one window: the figures, the flagged bars' starts and the worst bars."""
    def number(value: float | None) -> object:
        return MetadataValue.null() if value is None else MetadataValue.float(value)

    flagged = c.flagged
    return {
        "other_symbol": check.other_symbol,
        "timeframe": check.timeframe.value,
        "bars_compared": c.bars_compared,
        "bars_this": c.bars_this,
        "bars_other": c.bars_other,
        "basis": number(c.basis),
        "median_rel_diff": number(c.median_rel_diff),
        "max_rel_diff": number(c.max_rel_diff),
        "bars_over_tolerance": c.bars_over_tolerance,
        "tolerance": c.tolerance,
        "tolerance_source": tolerance_source,
        "flagged_bars": MetadataValue.json([f"{ts:%Y-%m-%dT%H:%M:%SZ}" for ts in flagged["ts"].head(FLAGGED_LISTED)]),
        "worst_bars": MetadataValue.md(markdown_table(c.bars, WORST_COLUMNS, WORST_BARS_SHOWN)),
    }
