"""The comparison behind the `cross_check` asset check, on two series written into a real store: a
known constant basis is estimated and removed, and exactly the bars made to diverge are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.catalog import AssetClass
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality import cross_check as xc
from massive_pipeline.quality.settings import QualitySettingsError
from massive_pipeline.store import CandleStore

DAY = pd.Timestamp("2026-10-14", tz="UTC")
NEXT = DAY + pd.Timedelta(days=1)
BASIS = 0.0015  # BTCUSDT quotes 0.15 % above BTCUSD
DIVERGENT = {  # minute of the day -> relative error put into the other source's close
    125: 0.021, 734: -0.013, 1301: 0.0075,
}
CHECK = xc.CrossCheck("BTCUSD", "BTCUSDT", Timeframe.M1, AssetClass.CRYPTO)


def _bars(ts: pd.DatetimeIndex, close: np.ndarray) -> pd.DataFrame:
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame({
        "ts": ts, "open": open_, "high": np.maximum(open_, close) * 1.0002, "low": np.minimum(open_, close) * 0.9998,
        "close": close, "volume": 1.0, "vwap": None, "trades": None,
    })


def _write(store: CandleStore, symbol: str, bars: pd.DataFrame, start=DAY, end=NEXT) -> None:
    store.write_window(symbol, "M1", start, end, bars, source="test")


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    store = CandleStore(f"sqlite:///{tmp_path}/candles.sqlite")
    store.create_schema()
    return store


def _pair(store: CandleStore, *, missing: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BTCUSD for a day, and BTCUSDT: the same market at the basis, with quote noise far inside the
    tolerance, the three divergent bars, and `missing` minutes it lacks."""
    rng = np.random.default_rng(7)
    ts = pd.date_range(DAY, NEXT, freq="1min", inclusive="left")
    close = 68_000 * np.exp(np.cumsum(rng.normal(0, 4e-4, len(ts))))
    other = close * (1 + BASIS) * (1 + rng.normal(0, 2e-4, len(ts)))
    for minute, error in DIVERGENT.items():
        other[minute] *= 1 + error
    this_bars, other_bars = _bars(ts, close), _bars(ts, other)
    if missing:
        other_bars = other_bars.drop(index=range(600, 600 + missing)).reset_index(drop=True)
    _write(store, "BTCUSD", this_bars)
    _write(store, "BTCUSDT", other_bars)
    return this_bars, other_bars


def test_the_basis_is_removed_and_exactly_the_divergent_bars_are_reported(store):
    _pair(store, missing=20)
    [result] = xc.compare_windows(store, CHECK, [("2026-10-14", DAY, NEXT)], 0.005)
    c = result.comparison
    assert (c.bars_this, c.bars_other, c.bars_compared) == (1440, 1420, 1420)  # common bars only
    assert c.basis == pytest.approx(BASIS, rel=0.10)
    assert sorted(c.flagged["ts"]) == [DAY + pd.Timedelta(minutes=m) for m in sorted(DIVERGENT)]
    assert c.bars_over_tolerance == 3
    assert c.max_rel_diff == pytest.approx(0.021, rel=0.05)
    assert c.median_rel_diff < 3e-4  # the quote noise, not the basis
    # worst first, signed
    assert c.bars["ts"].iloc[0] == DAY + pd.Timedelta(minutes=125) and c.bars["rel_diff"].iloc[1] < 0


def test_without_the_basis_removed_every_bar_would_be_off_so_the_basis_matters(store):
    """A guard on the test itself: the basis is larger than the tolerance it is judged against."""
    _pair(store)
    [result] = xc.compare_windows(store, CHECK, [(None, DAY, NEXT)], 0.001)
    assert BASIS > 0.001 and result.comparison.bars_over_tolerance == 3
    assert result.partition == "2026-10-14" and result.key is None


def test_windows_are_judged_one_by_one_from_one_read(store):
    this, _ = _pair(store)
    # a second day where the sources agree exactly (no basis, no noise)
    later = this.assign(ts=this["ts"] + pd.Timedelta(days=1))
    _write(store, "BTCUSD", later, NEXT, NEXT + pd.Timedelta(days=1))
    _write(store, "BTCUSDT", later, NEXT, NEXT + pd.Timedelta(days=1))
    windows = [("2026-10-14", DAY, NEXT), ("2026-10-15", NEXT, NEXT + pd.Timedelta(days=1))]
    first, second = xc.compare_windows(store, CHECK, windows, 0.005)
    assert first.comparison.bars_over_tolerance == 3
    assert (second.comparison.bars_over_tolerance, second.comparison.basis, second.comparison.max_rel_diff) == (0, 0, 0)


def test_comparisons_are_recorded_per_partition_and_an_empty_window_is_not(store):
    _pair(store)
    one, empty = xc.compare_windows(
        store, CHECK, [("2026-10-14", DAY, NEXT), ("2026-10-15", NEXT, NEXT + pd.Timedelta(days=1))], 0.005
    )
    assert xc.record(store, CHECK, one) and not xc.record(store, CHECK, empty)
    row = store.latest_provider_comparisons().iloc[0]
    assert (row["partition"], row["bars_compared"], row["bars_over_tolerance"]) == ("2026-10-14", 1440, 3)
    assert row["basis"] == pytest.approx(one.comparison.basis) and row["tolerance"] == 0.005
    assert xc.describe(CHECK, empty.comparison) == (True, "BTCUSDT has no M1 bars in this window: nothing compared")
    passed, line = xc.describe(CHECK, one.comparison)
    assert not passed and line.startswith("1440 common bars with BTCUSDT: basis +0.1") and "3 bar(s) beyond" in line


def test_forming_bars_are_left_out_of_both_sides(store):
    this, other = _pair(store)
    last = this["ts"].iloc[-1]
    # the other source stored the last minute while it was still forming, at a very different close
    store.write_window("BTCUSDT", "M1", last, NEXT, other.tail(1).assign(close=other["close"].iloc[-1] * 1.05,
                                                                          high=other["close"].iloc[-1] * 1.06),
                       source="test", now=last + pd.Timedelta(seconds=30))
    [result] = xc.compare_windows(store, CHECK, [("2026-10-14", DAY, NEXT)], 0.005)
    assert result.comparison.bars_compared == 1439 and result.comparison.bars_over_tolerance == 3


def test_metadata_holds_the_figures_and_a_table_of_the_worst_bars(store):
    _pair(store)
    [result] = xc.compare_windows(store, CHECK, [("2026-10-14", DAY, NEXT)], 0.005)
    meta = xc.metadata(CHECK, result.comparison, "default for crypto")
    assert meta["bars_over_tolerance"] == 3 and meta["tolerance_source"] == "default for crypto"
    assert meta["flagged_bars"].value == [f"{DAY + pd.Timedelta(minutes=m):%Y-%m-%dT%H:%M:%SZ}"
                                         for m in (125, 734, 1301)]
    table = meta["worst_bars"].value
    assert table.splitlines()[0] == "| ts | close | other_close | rel_diff | over_tolerance |"
    assert "2026-10-14 02:05" in table.splitlines()[2] and "_… and 1430 more_" in table


# -- tolerance ----------------------------------------------------------------------------------


def test_tolerance_defaults_by_asset_class_and_is_set_by_env():
    assert xc.resolve_tolerance(CHECK, {}) == (0.005, "default for crypto")
    eurusd = xc.CrossCheck("EURUSD", "EURUSD2", Timeframe.M1, AssetClass.FOREX)
    assert xc.resolve_tolerance(eurusd, {}) == (0.0005, "default for forex")
    env = {xc.ENV_CROSS_CHECK_TOLERANCE: "crypto=1%, btcusd=0.002, forex=0.0001"}
    assert xc.resolve_tolerance(CHECK, env) == (0.002, "MASSIVE_CROSS_CHECK_TOLERANCE (BTCUSD)")
    assert xc.resolve_tolerance(eurusd, env) == (0.0001, "MASSIVE_CROSS_CHECK_TOLERANCE (forex)")
    assert xc.resolve_tolerance(eurusd, {xc.ENV_CROSS_CHECK_TOLERANCE: "0.3%"})[0] == pytest.approx(0.003)


@pytest.mark.parametrize(("text", "fragment"), [
    ("crypto=lots", "MASSIVE_CROSS_CHECK_TOLERANCE (crypto) must be a fraction such as 0.005"),
    ("crypto=150%", "must be above 0 and below 100%, got '150%'"),
    ("BTCUSD=0", "MASSIVE_CROSS_CHECK_TOLERANCE (BTCUSD) must be above 0"),
])
def test_a_bad_tolerance_names_the_variable(text, fragment):
    with pytest.raises(QualitySettingsError) as err:
        xc.resolve_tolerance(CHECK, {xc.ENV_CROSS_CHECK_TOLERANCE: text})
    assert fragment in str(err.value) and "\n" not in str(err.value)
