"""Spike and stale-price detection on synthetic series with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from massive_pipeline.quality.anomalies import find_spikes, find_stale_runs

K, WINDOW = 8.0, 61


def _series(returns: np.ndarray, start: str = "2026-10-12") -> pd.DataFrame:
    close = 1.08 * np.exp(np.cumsum(returns))
    return pd.DataFrame({"ts": pd.date_range(start, periods=len(close), freq="1min", tz="UTC"), "close": close})


def _quiet_and_volatile_days(seed: int = 3) -> pd.DataFrame:
    """Five days of minutes; day three is a news day: 5× the volatility, fat tails (Student t, 3 degrees
    of freedom), and a 1.5 % jump at 13:30 that holds."""
    rng = np.random.default_rng(seed)
    day = 1440
    r = rng.normal(0, 1.5e-4, 5 * day)
    r[2 * day : 3 * day] = rng.standard_t(3, day) * 5 * 1.5e-4
    r[2 * day + 13 * 60 + 30] = 0.015
    return _series(r)


def test_an_ordinary_volatile_day_has_no_spikes():
    bars = _quiet_and_volatile_days()
    day3 = bars["close"].iloc[2880:4320]
    assert np.abs(np.diff(np.log(day3))).max() > 0.01  # it really is volatile
    assert find_spikes(bars, K, WINDOW).empty


def test_injected_spikes_are_flagged_exactly():
    bars = _quiet_and_volatile_days()
    at = [500, 3000, 5000]  # a quiet day, the volatile day, another quiet day
    bars.loc[at[0], "close"] *= 1.2  # the bundled server's spike: close × 1.2
    bars.loc[at[1], "close"] *= 0.97  # a 3 % bad print inside the volatile day
    bars.loc[at[2], "close"] *= 1.004  # a 0.4 % bad print on a quiet day (~27 minute sigmas)
    found = find_spikes(bars, K, WINDOW)
    assert list(found["ts"]) == [bars["ts"].iloc[i] for i in at]
    assert np.isclose(found["close"].iloc[0], bars["close"].iloc[at[0]])
    assert (found["robust_z"].abs() > K).all()


def test_the_last_bar_cannot_be_confirmed_and_is_not_judged():
    bars = _quiet_and_volatile_days()
    bars.loc[len(bars) - 1, "close"] *= 1.2
    assert find_spikes(bars, K, WINDOW).empty


def test_flat_prices_do_not_make_every_tick_a_spike():
    r = np.zeros(600)
    r[::7] = 1e-5
    r[1::7] = -1e-5
    assert find_spikes(_series(r), K, WINDOW).empty


def test_stale_runs_of_identical_closes():
    rng = np.random.default_rng(1)
    r = rng.normal(0, 1e-4, 300)
    r[100:120] = 0.0  # closes 100..119 equal close 99: a run of 21 bars
    r[200:205] = 0.0  # 6 bars: too short
    bars = _series(r)
    runs = find_stale_runs(bars, 15)
    assert len(runs) == 1
    assert runs["first_bar"].iloc[0] == bars["ts"].iloc[99] and runs["last_bar"].iloc[0] == bars["ts"].iloc[119]
    assert runs["bars"].iloc[0] == 21
    assert len(find_stale_runs(bars, 6)) == 2
