"""The features assets' own checks, as pure functions of frames, and their Dagster specs.

`evaluate_features` judges one partition's features against the bars they were computed from;
the asset turns each finding into an `AssetCheckResult`. Three properties a consumer relies on:

- `features_rows_match_input`: one row per complete input bar of the partition, same stamps,
  same order (no bar dropped or invented by the computation);
- `features_finite_after_warmup`: no NaN or infinity once the warm-up is over; the warm-up is
  what the look-back bars did not cover (only the first partitions of a series have one);
- `volatility_non_negative`: realized volatility and ATR are never below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from dagster import AssetCheckSpec, AssetKey, PartitionsDefinition

from massive_pipeline.features.compute import FEATURE_COLUMNS, FeatureParams

ROWS_MATCH_INPUT = "features_rows_match_input"
FINITE_AFTER_WARMUP = "features_finite_after_warmup"
NON_NEGATIVE = "volatility_non_negative"
FEATURE_CHECKS: dict[str, str] = {
    ROWS_MATCH_INPUT: "One features row per complete input bar of the partition, with the same timestamps.",
    FINITE_AFTER_WARMUP: "No NaN or infinite feature after the warm-up the look-back bars did not cover.",
    NON_NEGATIVE: "Realized volatility and ATR are never negative.",
}
NON_NEGATIVE_COLUMNS: tuple[str, ...] = ("realized_vol", "atr")


@dataclass(frozen=True)
class FeatureFinding:
    """One check's verdict on one partition's features."""

    check: str
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def feature_check_specs(asset_key: AssetKey, partitions_def: PartitionsDefinition) -> list[AssetCheckSpec]:
    """The checks of one features asset, partitioned like it."""
    return [
        AssetCheckSpec(name, asset=asset_key, description=text, partitions_def=partitions_def)
        for name, text in FEATURE_CHECKS.items()
    ]


def warmup_rows(params: FeatureParams, lookback_rows: int) -> dict[str, int]:
    """Per feature, the leading rows of a partition that may have no value: the warm-up less the
    bars the look-back supplied."""
    return {col: max(0, need - lookback_rows) for col, need in params.warmups().items()}


def _rows_match(features: pd.DataFrame, input_bars: pd.DataFrame) -> FeatureFinding:
    expected = input_bars.loc[input_bars["complete"].astype(bool), "ts"].reset_index(drop=True)
    got = features["ts"].reset_index(drop=True)
    same = len(got) == len(expected) and bool((got.to_numpy() == expected.to_numpy()).all())
    detail = "same timestamps" if same else "timestamps differ"
    return FeatureFinding(
        ROWS_MATCH_INPUT,
        same,
        f"{len(got)} features rows for {len(expected)} complete input bars ({detail})",
        {"feature_rows": len(got), "complete_input_bars": len(expected)},
    )


def _finite_after_warmup(features: pd.DataFrame, allowed: dict[str, int]) -> FeatureFinding:
    late: dict[str, int] = {}
    for col in FEATURE_COLUMNS:
        bad = ~np.isfinite(features[col].to_numpy(dtype="float64"))
        bad[: allowed[col]] = False
        if bad.any():
            late[col] = int(bad.sum())
    text = (
        "every feature is finite after the warm-up"
        if not late
        else "non-finite values after the warm-up: " + ", ".join(f"{c} {n} row(s)" for c, n in late.items())
    )
    return FeatureFinding(
        FINITE_AFTER_WARMUP,
        not late,
        text,
        {"warmup_rows": max(allowed.values()), "non_finite_rows": sum(late.values())},
    )


def _non_negative(features: pd.DataFrame) -> FeatureFinding:
    negative = {col: int((features[col] < 0).sum()) for col in NON_NEGATIVE_COLUMNS}
    negative = {c: n for c, n in negative.items() if n}
    text = (
        "realized volatility and ATR are non-negative"
        if not negative
        else "negative values: " + ", ".join(f"{c} {n} row(s)" for c, n in negative.items())
    )
    return FeatureFinding(NON_NEGATIVE, not negative, text, {"negative_rows": sum(negative.values())})


def evaluate_features(
    features: pd.DataFrame, input_bars: pd.DataFrame, params: FeatureParams, lookback_rows: int
) -> list[FeatureFinding]:
    """Every check on one partition: `features` its rows, `input_bars` the input's bars of the
    partition (without the look-back), `lookback_rows` how many bars before it were supplied."""
    return [
        _rows_match(features, input_bars),
        _finite_after_warmup(features, warmup_rows(params, lookback_rows)),
        _non_negative(features),
    ]
