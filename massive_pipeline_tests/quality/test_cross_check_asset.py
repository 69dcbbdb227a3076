"""The `cross_check` asset check through real Dagster runs against the bundled Massive server: BTCUSD's
M1 partitions compared with BTCUSDT's bars as stored, a warning that never fails the run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance, instance_for_test

from massive_pipeline.candles.assets import build_candle_assets
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog, parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality.cross_check import CROSS_CHECK
from massive_pipeline.store import CandleStore

DAY = dt.date(2026, 10, 14)
START = pd.Timestamp(DAY, tz="UTC")
BASIS = 0.002
DIVERGENT_MINUTES = (61, 700, 1250)

CATALOG = """\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto,
     start: 2025-06-01, cross_check: BTCUSDT}
  - {symbol: BTCUSDT, ticker: "X:BTCUSDT", asset_class: crypto, priority: high, calendar: crypto, start: 2025-06-01}
  - {symbol: ETHUSD, ticker: "X:ETHUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2025-06-01,
     base_timeframe: M5, cross_check: BTCUSD}
"""


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path, database_url):
    path = tmp_path / "cross-catalog.yaml"
    path.write_text(CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def _backfill(instance: DagsterInstance, symbol: str, timeframes=(Timeframe.M1,)):
    catalog = load_catalog()
    [run] = run_candle_backfill(build_definitions(catalog), instance, [catalog.get(symbol)], list(timeframes), DAY, DAY)
    return run


def _cross_check_evaluations(instance: DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return [e for e in evaluations if e.check_name == CROSS_CHECK]


def test_the_check_sits_on_the_compared_timeframe_only():
    """BTCUSD compares on its base M1; ETHUSD's base M5 is coarser than BTCUSD's, so on ETHUSD M5."""
    assets = build_candle_assets(parse_catalog(CATALOG))
    with_check = sorted(
        "/".join(spec.asset_key.path) for a in assets for spec in a.check_specs if spec.name == CROSS_CHECK
    )
    assert with_check == ["candles/btcusd/m1", "candles/ethusd/m5"]


def test_btcusd_is_compared_with_the_stored_btcusdt_bars_per_partition(env, database_url):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        # BTCUSDT has no bars yet: the check says so and passes; nothing is recorded
        first = _backfill(instance, "BTCUSD")
        assert first.success
        [alone] = _cross_check_evaluations(instance, first.run_id)
        assert alone.passed and alone.partition == DAY.isoformat()
        assert alone.description == "BTCUSDT has no M1 bars in this window: nothing compared"
        assert store.provider_comparisons().empty

        # the other source: the same market at a basis, three bars wrong
        btcusd = store.read("BTCUSD", "M1", START, START + pd.Timedelta(days=1))
        factor = np.full(len(btcusd), 1 + BASIS)
        wrong = btcusd.index[btcusd["ts"].isin([START + pd.Timedelta(minutes=m) for m in DIVERGENT_MINUTES])]
        factor[wrong] *= (1.03, 0.98, 1.012)
        other = btcusd.assign(**{c: btcusd[c] * factor for c in ("open", "high", "low", "close")})
        store.write_window("BTCUSDT", "M1", START, START + pd.Timedelta(days=1), other, source="test")

        second = _backfill(instance, "BTCUSD")
        assert second.success  # a warning, not a failed run
        [judged] = _cross_check_evaluations(instance, second.run_id)
        assert not judged.passed and judged.severity is AssetCheckSeverity.WARN
        assert judged.asset_key == AssetKey(["candles", "btcusd", "m1"]) and judged.partition == DAY.isoformat()
        meta = {k: v.value for k, v in judged.metadata.items()}
        # worst first: 3 %, 2 %, 1.2 %
        assert meta["flagged_bars"] == [f"{START + pd.Timedelta(minutes=m):%Y-%m-%dT%H:%M:%SZ}" for m in DIVERGENT_MINUTES]
        assert meta["bars_over_tolerance"] == 3 and meta["bars_compared"] == len(btcusd)
        assert meta["basis"] == pytest.approx(BASIS, rel=0.10)
        assert meta["tolerance"] == 0.005 and meta["tolerance_source"] == "default for crypto"
        assert "| ts | close | other_close | rel_diff | over_tolerance |" in meta["worst_bars"]
        assert "3 bar(s) beyond the tolerance of 0.500%" in judged.description

    [row] = store.provider_comparisons().to_dict("records")
    assert (row["symbol"], row["other_symbol"], row["timeframe"], row["partition"]) == (
        "BTCUSD", "BTCUSDT", "M1", DAY.isoformat())
    assert (row["bars_compared"], row["bars_over_tolerance"]) == (len(btcusd), 3)
    assert row["basis"] == pytest.approx(meta["basis"]) and row["max_rel_diff"] == pytest.approx(0.03, rel=0.01)


def test_the_tolerance_comes_from_the_environment(env, database_url, monkeypatch):
    store = CandleStore(database_url)
    monkeypatch.setenv("MASSIVE_CROSS_CHECK_TOLERANCE", "crypto=5%")
    with instance_for_test() as instance:
        _backfill(instance, "BTCUSD")
        btcusd = store.read("BTCUSD", "M1", START, START + pd.Timedelta(days=1))
        other = btcusd.assign(close=btcusd["close"] * 1.04, high=btcusd["high"] * 1.04, open=btcusd["open"] * 1.04,
                              low=btcusd["low"] * 1.04)
        other.loc[10, ["close", "high"]] = other.loc[10, "close"] * 1.2
        store.write_window("BTCUSDT", "M1", START, START + pd.Timedelta(days=1), other, source="test")
        run = _backfill(instance, "BTCUSD")
        [judged] = _cross_check_evaluations(instance, run.run_id)
    meta = {k: v.value for k, v in judged.metadata.items()}
    assert (meta["tolerance"], meta["tolerance_source"]) == (0.05, "MASSIVE_CROSS_CHECK_TOLERANCE (crypto)")
    assert meta["bars_over_tolerance"] == 1 and meta["basis"] == pytest.approx(0.04, rel=0.01)
