"""`massive-pipeline status` and the sync status of failed runs, against the bundled server."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from dagster import build_run_status_sensor_context, instance_for_test

from massive_pipeline.cli import main
from massive_pipeline.cli.launch import BackfillError, run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.queue import QueueState, order_queue, secondary_specs
from massive_pipeline.operations.queue_report import write_queue_report
from massive_pipeline.operations.sensors import SYNC_FAILURE_SENSOR
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.operations.status import collect_status, record_status
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.rate_budgets import budget_from_env
from massive_pipeline.store import CandleStore

DAY = dt.date(2026, 10, 7)


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    return pipeline_env


def _backfill(symbols, timeframes, instance):
    catalog = load_catalog()
    return run_candle_backfill(build_definitions(catalog), instance, [catalog.get(s) for s in symbols],
                               timeframes, DAY, DAY)


def test_status_prints_and_records_each_series(env, capsys):
    with instance_for_test() as instance:
        _backfill(["EURUSD", "GBPUSD"], [Timeframe.M1, Timeframe.H1], instance)
    store = CandleStore()
    gaps = pd.DataFrame({"gap_start": [pd.Timestamp("2026-10-07T10:00Z")], "gap_end": [pd.Timestamp("2026-10-07T10:30Z")],
                         "candles_missing": [30]})
    store.record_gaps("GBPUSD", "M1", gaps)
    store.update_sync_status("SPX500", "D1", status="error", error="run 1234abcd: not entitled")
    # the sensor last recorded two failures of GBPUSD today
    now = pd.Timestamp.now(tz="UTC")
    state = QueueState(cycle=now.date().isoformat())
    state.record("GBPUSD").failures = 2
    state.record("GBPUSD").last_error = "candles__gbpusd__m1: timed out"
    catalog = load_catalog()
    write_queue_report(store, order_queue(secondary_specs(catalog), store, state, now, {}, OperationsSettings()), now)

    assert main(["status", "--all-timeframes"]) == 0
    out = capsys.readouterr().out
    # the backfill's requests are still inside the limiter's window
    assert re.search(r"^limiter: [1-9]\d* of 100000 requests used in the last 60 s, \d+ remaining", out, re.M)
    lines = {tuple(line.split()[:3]): line for line in out.splitlines() if line[:6] in ("EURUSD", "GBPUSD", "SPX500")}
    eur_m1 = lines[("EURUSD", "critical", "M1")]
    last = store.last_bar_ts("EURUSD", "M1")
    assert last.strftime("%Y-%m-%d %H:%M") in eur_m1
    assert str(store.count("EURUSD", "M1")) in eur_m1.split()
    assert "critical: every 5 min" in eur_m1
    gbp_m1 = lines[("GBPUSD", "high", "M1")].split()
    assert gbp_m1[-1] == "1"  # one open gap
    assert gbp_m1[-2] == "2"  # retries
    assert "(due)" in lines[("GBPUSD", "high", "M1")]
    assert "error: run 1234abcd" in lines[("SPX500", "medium", "D1")]

    # the same figures are in sync_status, for every series of the catalog
    table = store.sync_status().set_index(["symbol", "timeframe"])
    n_series = sum(len(s.timeframes) for s in catalog)
    assert len(table) == n_series and f"sync_status updated for {n_series} series" in out
    assert table.loc[("EURUSD", "M1"), "last_bar_ts"] == last
    assert table.loc[("EURUSD", "M1"), "rows"] == store.count("EURUSD", "M1")
    assert table.loc[("EURUSD", "M1"), "status"] == "ok"
    assert table.loc[("SPX500", "M1"), "status"] == "never"
    assert table.loc[("SPX500", "D1"), "status"] == "error"  # a run's verdict is kept
    store.dispose()


def test_status_queue_positions_follow_tier_and_staleness(env, database_url):
    store = CandleStore(database_url)
    store.create_schema()
    catalog = load_catalog()
    now = pd.Timestamp("2026-10-07T12:00:00Z")
    report = collect_status(catalog, store, now)
    queue = {s.symbol: s.queue for s in report.series if s.timeframe is Timeframe.M1}
    assert queue == {"EURUSD": "critical: every 5 min", "XAUUSD": "critical: every 5 min",
                     "BTCUSD": "critical: every 5 min", "GBPUSD": "1 (due)", "SPX500": "2 (due)"}
    assert {s.freshness for s in report.series} == {"no data"}
    assert record_status(store, report) == len(report.series)
    assert set(store.sync_status()["status"]) == {"never"}

    # GBPUSD gave up today (as the sensor recorded it): last in the queue, no position
    state = QueueState(cycle=now.date().isoformat())
    state.record("GBPUSD").failures = 3
    state.record("GBPUSD").last_error = "candles__gbpusd__m1: timed out"
    write_queue_report(store, order_queue(secondary_specs(catalog), store, state, now, {}, OperationsSettings()), now)
    again = collect_status(catalog, store, now)
    by_symbol = {s.symbol: s for s in again.series if s.timeframe is Timeframe.M1}
    assert by_symbol["SPX500"].queue == "1 (due)"
    assert by_symbol["GBPUSD"].queue == "given up" and by_symbol["GBPUSD"].retries == 3
    assert again.queue_evaluated_at == now
    # a day later the failures no longer count
    tomorrow = collect_status(catalog, store, now + pd.Timedelta(days=1))
    assert {s.symbol: s.queue for s in tomorrow.series if s.timeframe is Timeframe.M1}["GBPUSD"] == "1 (due)"
    store.dispose()


def test_unknown_symbol_is_a_usage_error(env, capsys):
    assert main(["status", "--symbols", "EURUSX"]) == 2
    assert "EURUSD" in capsys.readouterr().err


def test_a_failed_run_marks_the_series_it_did_not_write_as_error(env):
    defs = build_definitions(load_catalog())
    sensor = defs.get_repository_def().get_sensor_def(SYNC_FAILURE_SENSOR)
    store = CandleStore()
    with instance_for_test() as instance:
        _backfill(["GBPUSD"], [Timeframe.M1, Timeframe.H1], instance)
        ok_before = store.sync_status().set_index(["symbol", "timeframe"])
        assert ok_before.loc[("GBPUSD", "M1"), "status"] == "ok"
        env.set_faults(not_entitled=True)
        with pytest.raises(BackfillError):
            _backfill(["GBPUSD"], [Timeframe.M1, Timeframe.H1], instance)
        env.set_faults(not_entitled=False)
        [failed] = [r for r in instance.get_run_records() if not r.dagster_run.is_success]
        run = failed.dagster_run
        event = instance.get_records_for_run(run.run_id, of_type=_run_failure()).records[0].event_log_entry.dagster_event

        def evaluate() -> None:
            with build_run_status_sensor_context(
                sensor_name=SYNC_FAILURE_SENSOR, dagster_event=event, dagster_instance=instance, dagster_run=run,
                resources={"candle_store": CandleStoreResource()},
            ) as context:
                sensor(context.for_run_failure())

        evaluate()
        table = store.sync_status().set_index(["symbol", "timeframe"])
        for tf in ("M1", "H1"):
            assert table.loc[("GBPUSD", tf), "status"] == "error"
            assert run.run_id[:8] in table.loc[("GBPUSD", tf), "error"]
            assert "not entitled" in table.loc[("GBPUSD", tf), "error"]
        # the bars of the last good sync are still what the row describes
        assert table.loc[("GBPUSD", "M1"), "last_bar_ts"] == ok_before.loc[("GBPUSD", "M1"), "last_bar_ts"]

        # a later good run wins over a failure the sensor sees late
        _backfill(["GBPUSD"], [Timeframe.M1, Timeframe.H1], instance)
        evaluate()
        table = store.sync_status().set_index(["symbol", "timeframe"])
        assert table.loc[("GBPUSD", "M1"), "status"] == "ok"
    store.dispose()


def _run_failure():
    from dagster import DagsterEventType

    return DagsterEventType.RUN_FAILURE


def test_status_prints_every_budget_in_its_unit(env, capsys, monkeypatch):
    """Massive's budget in requests and Binance's in weight units, each with used, remaining, limit and
    waiting, from the one backend they share; neither counts the other's requests."""
    monkeypatch.setenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", "1200")
    monkeypatch.setenv("BINANCE_CRITICAL_RESERVE", "0.1")
    with budget_from_env("binance").build_limiter() as binance, budget_from_env("massive").build_limiter() as massive:
        binance.acquire(critical=False, weight=5)
        binance.acquire(critical=False, weight=10)
        binance.acquire(critical=True, weight=2)
        massive.acquire(critical=True)
        backend = massive.backend

    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    budget_lines = [line for line in out if line.startswith("limiter")]
    assert budget_lines == [
        "limiter: 1 of 100000 requests used in the last 60 s, 99999 remaining (20000 reserved for the priority "
        f"refresh); 0 waiting; 1 acquired since reset (1 critical); backend {backend}",
        "limiter binance: 17 of 1200 weight units used in the last 60 s, 1183 remaining (120 reserved for "
        f"critical work); 0 waiting; 17 acquired in 3 requests since reset (2 critical); backend {backend}",
    ]


def test_status_shows_only_massives_budget_when_no_other_provider_is_configured(env, capsys, monkeypatch):
    monkeypatch.delenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", raising=False)
    monkeypatch.delenv("BINANCE_CRITICAL_RESERVE", raising=False)
    assert main(["status"]) == 0
    budget_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("limiter")]
    assert len(budget_lines) == 1 and budget_lines[0].startswith("limiter: 0 of 100000 requests used")
