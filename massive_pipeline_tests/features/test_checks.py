"""The features checks as pure functions: they pass on good features and fail on crafted bad frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.features.checks import (
    FINITE_AFTER_WARMUP,
    NON_NEGATIVE,
    ROWS_MATCH_INPUT,
    evaluate_features,
    warmup_rows,
)
from massive_pipeline.features.compute import FeatureParams, compute_features
from massive_pipeline_tests.features.crafted import random_bars

PARAMS = FeatureParams(vol_window=6, atr_period=4)


def _partition(lookback: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of a 24-bar partition computed with `lookback` bars before it, and its input bars."""
    bars = random_bars(lookback + 24)
    bars["complete"] = True
    features = compute_features(bars, PARAMS).iloc[lookback:].reset_index(drop=True)
    return features, bars.iloc[lookback:].reset_index(drop=True)


def _verdicts(features: pd.DataFrame, bars: pd.DataFrame, lookback: int) -> dict[str, bool]:
    return {f.check: f.passed for f in evaluate_features(features, bars, PARAMS, lookback)}


@pytest.mark.parametrize("lookback", [0, 3, PARAMS.warmup])
def test_good_features_pass_every_check(lookback):
    features, bars = _partition(lookback)
    assert _verdicts(features, bars, lookback) == {
        ROWS_MATCH_INPUT: True,
        FINITE_AFTER_WARMUP: True,
        NON_NEGATIVE: True,
    }


def test_a_dropped_row_fails_the_row_check():
    features, bars = _partition(PARAMS.warmup)
    findings = evaluate_features(features.drop(index=5).reset_index(drop=True), bars, PARAMS, PARAMS.warmup)
    rows = next(f for f in findings if f.check == ROWS_MATCH_INPUT)
    assert not rows.passed
    assert rows.metadata == {"feature_rows": 23, "complete_input_bars": 24}


def test_shifted_timestamps_fail_the_row_check_even_with_the_right_count():
    features, bars = _partition(PARAMS.warmup)
    features["ts"] = features["ts"] + pd.Timedelta(hours=1)
    assert _verdicts(features, bars, PARAMS.warmup)[ROWS_MATCH_INPUT] is False


def test_forming_input_bars_are_not_expected_in_the_features():
    features, bars = _partition(PARAMS.warmup)
    bars.loc[len(bars)] = {
        **bars.iloc[-1].to_dict(),
        "ts": bars["ts"].iloc[-1] + pd.Timedelta(hours=1),
        "complete": False,
    }
    assert _verdicts(features, bars, PARAMS.warmup)[ROWS_MATCH_INPUT] is True


def test_nan_after_the_warmup_fails_but_nan_inside_it_does_not():
    features, bars = _partition(PARAMS.warmup)
    late = features.copy()
    late.loc[10, "realized_vol"] = np.nan
    finding = next(
        f for f in evaluate_features(late, bars, PARAMS, PARAMS.warmup) if f.check == FINITE_AFTER_WARMUP
    )
    assert not finding.passed and finding.description.endswith("realized_vol 1 row(s)")
    inf = features.copy()
    inf.loc[3, "log_return"] = np.inf
    assert _verdicts(inf, bars, PARAMS.warmup)[FINITE_AFTER_WARMUP] is False
    # the first partition of a series has no bars before it: its warm-up rows are allowed to be NaN
    first, first_bars = _partition(0)
    assert first["atr"].iloc[: PARAMS.atr_period].isna().all()
    assert _verdicts(first, first_bars, 0)[FINITE_AFTER_WARMUP] is True
    first.loc[PARAMS.atr_period, "atr"] = np.nan  # one row past the ATR's warm-up
    assert _verdicts(first, first_bars, 0)[FINITE_AFTER_WARMUP] is False


def test_warmup_rows_shrink_with_the_lookback():
    assert warmup_rows(PARAMS, 0) == {"log_return": 1, "realized_vol": 6, "atr": 4}
    assert warmup_rows(PARAMS, 4) == {"log_return": 0, "realized_vol": 2, "atr": 0}
    assert warmup_rows(PARAMS, 10) == {"log_return": 0, "realized_vol": 0, "atr": 0}


@pytest.mark.parametrize("column", ["atr", "realized_vol"])
def test_a_negative_volatility_fails(column):
    features, bars = _partition(PARAMS.warmup)
    features.loc[7, column] = -1e-9
    finding = next(
        f for f in evaluate_features(features, bars, PARAMS, PARAMS.warmup) if f.check == NON_NEGATIVE
    )
    assert not finding.passed and finding.metadata == {"negative_rows": 1}
    assert column in finding.description
