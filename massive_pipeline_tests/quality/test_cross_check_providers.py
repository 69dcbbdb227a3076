"""Acceptance (issue 14): BTCUSD from the bundled Massive server cross-checked with BTCUSDT from the
bundled Binance server, which quotes it at a constant basis with three bars made to diverge; the check
reports exactly those three and estimates the basis within 10 %.

Both come through real Dagster runs of their M1 assets, each from its own provider: BTCUSDT first
(the Binance resource), then BTCUSD (Massive), whose `cross_check` evaluation is read back from the
run's events."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetCheckSeverity, DagsterEventType, instance_for_test

from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality.cross_check import CROSS_CHECK
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.fixtures.cross_check_catalog import BTC_PAIR_CATALOG

DAY = dt.date(2026, 3, 30)  # a whole day before the Binance server's frozen clock (conftest.BINANCE_NOW)
START = pd.Timestamp(DAY, tz="UTC")
END = START + pd.Timedelta(days=1)
BASIS = 1.0015  # BTCUSDT = BTCUSD x 1.0015
DIVERGENT = [START + pd.Timedelta(minutes=m) for m in (97, 733, 1288)]



@pytest.fixture
def env(pipeline_env, binance_server, monkeypatch, tmp_path, database_url):
    path = tmp_path / "providers.yaml"
    path.write_text(BTC_PAIR_CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    monkeypatch.setenv("BINANCE_BASE_URL", binance_server.url)
    monkeypatch.delenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", raising=False)
    return binance_server


def test_btcusd_from_massive_against_btcusdt_from_binance_reports_exactly_the_three_divergent_bars(env, database_url):
    binance = env
    binance.set_switches(basis=BASIS, divergent_bars=[int(ts.value // 1_000_000) for ts in DIVERGENT],
                         divergence=0.02)
    store = CandleStore(database_url)
    catalog = load_catalog()
    defs = build_definitions(catalog)
    with instance_for_test() as instance:
        [binance_run] = run_candle_backfill(defs, instance, [catalog.get("BTCUSDT")], [Timeframe.M1], DAY, DAY)
        assert binance_run.success and binance.kline_requests()
        btcusdt = store.read("BTCUSDT", "M1", START, END)
        assert set(btcusdt["source"]) == {"binance"} and len(btcusdt) > 1400
        [run] = run_candle_backfill(defs, instance, [catalog.get("BTCUSD")], [Timeframe.M1], DAY, DAY)
        assert run.success  # the divergences are a warning; the partition is stored
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    [judged] = [e for e in (r.event_log_entry.dagster_event.event_specific_data for r in records)
                if e.check_name == CROSS_CHECK]
    meta = {k: v.value for k, v in judged.metadata.items()}

    assert not judged.passed and judged.severity is AssetCheckSeverity.WARN and judged.partition == DAY.isoformat()
    assert sorted(pd.Timestamp(t) for t in meta["flagged_bars"]) == DIVERGENT  # exactly those three
    assert meta["bars_over_tolerance"] == 3
    estimated = meta["basis"]
    assert abs(estimated - (BASIS - 1)) <= 0.10 * (BASIS - 1), estimated
    # both sources hold the same minutes (the bundled servers drop the same thin-hour ones)
    assert meta["bars_compared"] == meta["bars_this"] == meta["bars_other"] == len(btcusdt)

    [row] = store.provider_comparisons("BTCUSD", "BTCUSDT", "M1").to_dict("records")
    assert (row["partition"], row["bars_over_tolerance"]) == (DAY.isoformat(), 3)
    assert row["basis"] == pytest.approx(estimated) and row["max_rel_diff"] == pytest.approx(0.02, rel=0.01)
    assert row["median_rel_diff"] < 1e-9  # apart from the three, the sources agree to the rounding
