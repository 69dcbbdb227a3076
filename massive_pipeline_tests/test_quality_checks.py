"""Quarantine and the per-partition asset checks of the candle assets, against the bundled server's
fault switches, through real Dagster runs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance, instance_for_test
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus as Resolved
from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state

from massive_pipeline.assets.partitions import daily_partitions
from massive_pipeline.catalog import load_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality import checks
from massive_pipeline.quality.validation import validate_bars
from massive_pipeline.resample import resample_bars
from massive_pipeline.runner import BackfillError, run_candle_backfill
from massive_pipeline.store import CandleStore
from massive_pipeline.timeframes import Timeframe

TUE, WED, THU = "2026-10-13", "2026-10-14", "2026-10-15"


def _ms(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value // 1_000_000


def _backfill(instance: DagsterInstance, symbol: str, timeframes, start=TUE, end=THU):
    catalog = load_catalog()
    return run_candle_backfill(
        build_definitions(catalog), instance, [catalog.get(symbol)], timeframes,
        dt.date.fromisoformat(start), dt.date.fromisoformat(end),
    )


def _ui_status(instance: DagsterInstance, symbol: str, tf: str, check: str) -> dict[str, set[str]]:
    """Per-partition check status as the UI computes it: {status: partition keys}."""
    key = AssetCheckKey(AssetKey(["candles", symbol.lower(), tf]), check)
    pdef = daily_partitions(dt.date(2025, 6, 1))
    state = bulk_update_asset_check_state(instance, [(key, pdef)], {key: AssetCheckState.empty()})[key]
    return {s.value: set(sub.value.get_partition_keys()) for s, sub in state.subsets.items() if not sub.is_empty}


def _evaluations(instance: DagsterInstance, run_id: str) -> dict[tuple[str, str, str], object]:
    """{(asset, check, partition): evaluation} of one run."""
    out = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        out[(ev.asset_key.path[-1], ev.check_name, ev.partition)] = ev
    return out


def _materializations(instance: DagsterInstance, run_id: str) -> list:
    return [
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    ]


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def test_bad_rows_are_quarantined_and_the_rest_of_the_partition_lands(env, database_url):
    bad = [_ms(f"{WED} 09:00"), _ms(f"{WED} 09:01"), _ms(f"{WED} 14:30")]
    with instance_for_test() as instance:
        clean = _backfill(instance, "EURUSD", [Timeframe.M1])[0]
        store = CandleStore(database_url)
        before = store.read("EURUSD", "M1")
        env.set_faults(bad_rows=bad)
        with pytest.raises(BackfillError, match="blocking asset check"):
            _backfill(instance, "EURUSD", [Timeframe.M1])
        run_id = instance.get_runs(limit=1)[0].run_id
        assert run_id != clean.run_id

        after = store.read("EURUSD", "M1")
        bad_ts = [pd.Timestamp(b, unit="ms", tz="UTC") for b in bad]
        assert len(after) == len(before) - 3  # every other bar of the partitions landed
        assert not after["ts"].isin(bad_ts).any()
        rejected = store.rejected("EURUSD", "M1")
        assert list(rejected["ts"]) == bad_ts
        assert all("high < low" in r for r in rejected["reason"])
        assert set(rejected["run_id"]) == {run_id}
        assert (rejected["high"] < rejected["low"]).all()  # kept as received, not repaired

        # counted in the materialization metadata of the run (one materialization per partition)
        mats = _materializations(instance, run_id)
        assert {m.partition for m in mats} == {TUE, WED, THU}
        meta = mats[0].step_materialization_data.materialization.metadata
        assert meta["rows_rejected"].value == 3
        assert "high < low" in meta["rejected_sample"].value

        # the checks name the partition, the rows and the reason
        evs = _evaluations(instance, run_id)
        for check in (checks.SCHEMA, checks.OHLC_CONSISTENT):
            assert not evs[("m1", check, WED)].passed and evs[("m1", check, WED)].blocking
            assert evs[("m1", check, TUE)].passed and evs[("m1", check, THU)].passed
        failing = evs[("m1", checks.OHLC_CONSISTENT, WED)].metadata
        assert failing["failing_rows"].value == 3 and failing["rejected_before_storage"].value == 3
        assert "2026-10-14 09:01" in failing["failing_sample"].value
        assert evs[("m1", checks.NO_DUPLICATES, WED)].passed and evs[("m1", checks.GRID_ALIGNED, WED)].passed
        store.dispose()


@pytest.mark.usefixtures("pipeline_env")
def test_a_blocking_failure_stops_derived_timeframes_in_the_same_run(pipeline_env):
    pipeline_env.set_faults(bad_rows=[_ms(f"{WED} 10:00")])
    with instance_for_test() as instance:
        with pytest.raises(BackfillError, match=r"candles/eurusd/m1: schema,ohlc_consistent"):
            _backfill(instance, "EURUSD", [Timeframe.M1, Timeframe.H1])
        m1, h1 = AssetKey(["candles", "eurusd", "m1"]), AssetKey(["candles", "eurusd", "h1"])
        assert instance.get_materialized_partitions(m1) == {TUE, WED, THU}
        assert instance.get_materialized_partitions(h1) == set()  # not derived from a bad partition
        store = CandleStore()
        assert store.count("EURUSD", "H1") == 0
        # what the UI shows, partition by partition
        assert _ui_status(instance, "EURUSD", "m1", checks.SCHEMA) == {
            Resolved.FAILED.value: {WED}, Resolved.SUCCEEDED.value: {TUE, THU},
        }
        assert _ui_status(instance, "EURUSD", "m1", checks.COMPLETE) == {Resolved.SUCCEEDED.value: {TUE, WED, THU}}

        pipeline_env.set_faults(bad_rows=[])  # the provider corrects the bar
        summaries = _backfill(instance, "EURUSD", [Timeframe.M1, Timeframe.H1])
        assert all(s.success for s in summaries)
        assert instance.get_materialized_partitions(h1) == {TUE, WED, THU}
        assert store.count("EURUSD", "H1") == 72
        assert _ui_status(instance, "EURUSD", "m1", checks.SCHEMA) == {Resolved.SUCCEEDED.value: {TUE, WED, THU}}
        assert _ui_status(instance, "EURUSD", "h1", checks.SCHEMA) == {Resolved.SUCCEEDED.value: {TUE, WED, THU}}
        store.dispose()


@pytest.mark.usefixtures("pipeline_env")
def test_spikes_are_flagged_and_ordinary_days_are_not(pipeline_env):
    spikes = [_ms(f"{WED} 08:17"), _ms(f"{WED} 15:42")]
    with instance_for_test() as instance:
        for symbol in ("EURUSD", "XAUUSD", "BTCUSD"):  # a week of the server's ordinary markets
            summaries = _backfill(instance, symbol, [Timeframe.M1, Timeframe.M15], "2026-10-07", "2026-10-13")
            for s in summaries:
                evs = _evaluations(instance, s.run_id)
                flagged = [k for k, ev in evs.items() if k[1] == checks.NO_SPIKES and not ev.passed]
                assert flagged == [], symbol
        pipeline_env.set_faults(spikes=spikes)
        run = _backfill(instance, "BTCUSD", [Timeframe.M1])[0]
        evs = _evaluations(instance, run.run_id)
        spiky = evs[("m1", checks.NO_SPIKES, WED)]
        assert not spiky.passed and spiky.severity.value == "WARN" and not spiky.blocking
        assert spiky.metadata["spikes"].value == 2
        table = spiky.metadata["spike_bars"].value
        assert "2026-10-14 08:17" in table and "2026-10-14 15:42" in table
        assert evs[("m1", checks.NO_SPIKES, TUE)].passed and evs[("m1", checks.NO_SPIKES, THU)].passed
        assert run.success  # a warning does not stop anything


@pytest.mark.usefixtures("pipeline_env")
def test_complete_warns_with_the_missing_ranges(pipeline_env):
    pipeline_env.set_faults(holes=[(_ms(f"{WED} 10:00"), _ms(f"{WED} 12:00"))])
    with instance_for_test() as instance:
        run = _backfill(instance, "EURUSD", [Timeframe.M1], TUE, "2026-10-17")[0]  # … through Saturday
        evs = _evaluations(instance, run.run_id)
        hole = evs[("m1", checks.COMPLETE, WED)]
        assert not hole.passed and hole.severity.value == "WARN"
        assert hole.metadata["bars_expected"].value == 1440
        assert hole.metadata["bars_missing"].value >= 120
        assert "| 2026-10-14 10:00 | 2026-10-14 12:00 | 120 |" in hole.metadata["longest_missing_ranges"].value
        assert evs[("m1", checks.COMPLETE, TUE)].passed
        saturday = evs[("m1", checks.COMPLETE, "2026-10-17")]
        assert saturday.passed and saturday.metadata["bars_expected"].value == 0


def _input(stored: pd.DataFrame, base: pd.DataFrame | None, tf: Timeframe) -> checks.CheckInput:
    day = pd.Timestamp(TUE, tz="UTC")
    parts = [checks.PartitionWindow(TUE, day, day + pd.Timedelta(days=1))]
    from massive_pipeline.calendars import get_calendar

    return checks.CheckInput(tf, get_calendar("forex"), parts, stored, validate_bars(stored, tf), stored.iloc[:0], base,
                             now=pd.Timestamp("2026-11-01", tz="UTC"))


@pytest.mark.usefixtures("pipeline_env")
def test_a_derived_bar_off_its_base_fails_schema(pipeline_env):
    with instance_for_test() as instance:  # it points DAGSTER_HOME, and so the default store, elsewhere
        _backfill(instance, "EURUSD", [Timeframe.M1], TUE, TUE)
        base = CandleStore().read("EURUSD", "M1")
    h1 = resample_bars(base, Timeframe.H1)
    found = {f.check: f for f in checks.evaluate(_input(h1, base, Timeframe.H1))}
    assert found[checks.SCHEMA].passed and found[checks.COMPLETE].passed
    h1.loc[5, "volume"] += 1.0
    found = {f.check: f for f in checks.evaluate(_input(h1, base, Timeframe.H1))}
    assert not found[checks.SCHEMA].passed
    assert "disagrees with its base bars: volume" in found[checks.SCHEMA].description
    assert found[checks.OHLC_CONSISTENT].passed  # the bar itself is well-formed
