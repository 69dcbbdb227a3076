"""The feature functions on crafted bars: values by hand, warm-up lengths, partitions computed alone."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.features.compute import FEATURE_COLUMNS, FeatureParams, compute_features
from massive_pipeline_tests.features.crafted import bars_from, random_bars


def test_values_by_hand():
    params = FeatureParams(vol_window=2, atr_period=2)
    out = compute_features(bars_from([100.0, 110.0, 99.0, 99.0]), params)
    r1, r2, r3 = math.log(110 / 100), math.log(99 / 110), 0.0
    assert np.isnan(out["log_return"].iloc[0])
    assert out["log_return"].iloc[1:].tolist() == pytest.approx([r1, r2, r3])
    assert out["realized_vol"].iloc[2:].tolist() == pytest.approx([math.hypot(r1, r2), math.hypot(r2, r3)])
    # true ranges: |110.5-100|=10.5 (a gap up), |98.5-110|=11.5 (a gap down), 1.0 (high-low)
    assert out["atr"].iloc[2:].tolist() == pytest.approx([(10.5 + 11.5) / 2, (11.5 + 1.0) / 2])
    assert list(out["ts"]) == list(bars_from([1.0] * 4)["ts"])


@pytest.mark.parametrize("params", [FeatureParams(24, 14), FeatureParams(20, 14), FeatureParams(5, 9)])
def test_the_warmup_is_exactly_as_long_as_declared(params):
    out = compute_features(random_bars(60), params)
    for col in FEATURE_COLUMNS:
        defined = out[col].notna().to_numpy()
        need = params.warmups()[col]
        assert not defined[:need].any() and defined[need:].all(), col
    assert params.warmup == max(params.vol_window, params.atr_period)


def test_a_partition_with_its_lookback_equals_the_whole_history_sliced():
    params = FeatureParams(vol_window=24, atr_period=14)
    bars = random_bars(24 * 5)
    whole = compute_features(bars, params)
    day = slice(24 * 3, 24 * 4)  # the fourth day, computed from its own bars and the warm-up before it
    alone = compute_features(bars.iloc[day.start - params.warmup : day.stop], params).iloc[params.warmup :]
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), whole.iloc[day].reset_index(drop=True))
    assert alone[list(FEATURE_COLUMNS)].notna().all().all()


def test_constant_prices_give_zero_volatility_never_nan():
    out = compute_features(bars_from([1.25] * 40, spread=0.0), FeatureParams(vol_window=10, atr_period=5))
    assert (out["realized_vol"].iloc[10:] == 0).all() and (out["atr"].iloc[5:] == 0).all()


def test_bad_params_and_bars_name_the_problem():
    with pytest.raises(ValueError, match=r"^FeatureParams.vol_window must be a positive integer, got 0$"):
        FeatureParams(vol_window=0)
    with pytest.raises(ValueError, match=r"^bars lack column\(s\) high, low needed for the features$"):
        compute_features(bars_from([1.0, 2.0]).drop(columns=["high", "low"]), FeatureParams())
