"""Quarantine and the per-partition asset checks of the candle assets, against the bundled server's
fault switches, through real Dagster runs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterEventType, DagsterInstance, instance_for_test
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus as Resolved
from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state

from massive_pipeline.candles.partitions import daily_partitions
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality import checks
from massive_pipeline.quality.validation import validate_bars
from massive_pipeline.store import CandleStore

TUE, WED, THU = "2026-10-13", "2026-10-14", "2026-10-15"


def _ms(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value // 1_000_000


def _backfill(instance: DagsterInstance, symbol: str, timeframes, start=TUE, end=THU, defs=None):
    catalog = load_catalog()
    return run_candle_backfill(
        defs or build_definitions(catalog), instance, [catalog.get(symbol)], timeframes,
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
        run = _backfill(instance, "EURUSD", [Timeframe.M1])[0]
        assert run.success and run.run_id != clean.run_id  # quarantine is a warning, not a failed run

        after = store.read("EURUSD", "M1")
        bad_ts = [pd.Timestamp(b, unit="ms", tz="UTC") for b in bad]
        # every other bar of the partitions landed, and the good bars stored before at the refused
        # starts stay as they were: a refused row is missing from the answer, never a deletion
        assert len(after) == len(before)
        kept = after.set_index("ts").loc[bad_ts, ["open", "high", "low", "close"]]
        assert kept.equals(before.set_index("ts").loc[bad_ts, ["open", "high", "low", "close"]])
        rejected = store.rejected("EURUSD", "M1")
        assert list(rejected["ts"]) == bad_ts
        assert all("high < low" in r for r in rejected["reason"])
        assert set(rejected["run_id"]) == {run.run_id} and rejected["times_seen"].tolist() == [1, 1, 1]
        assert (rejected["high"] < rejected["low"]).all()  # kept as received, not repaired

        # counted in the materialization metadata of the run (one materialization per partition)
        mats = _materializations(instance, run.run_id)
        assert {m.partition for m in mats} == {TUE, WED, THU}
        meta = mats[0].step_materialization_data.materialization.metadata
        assert meta["rows_rejected"].value == 3
        assert "high < low" in meta["rejected_sample"].value

        # the warning names the partition, the rows and the reason; the stored bars pass every rule
        evs = _evaluations(instance, run.run_id)
        warned = evs[("m1", checks.QUARANTINE, WED)]
        assert not warned.passed and warned.severity.value == "WARN" and not warned.blocking
        wed_bars = store.count("EURUSD", "M1", pd.Timestamp(WED, tz="UTC"), pd.Timestamp(THU, tz="UTC"))
        assert warned.metadata["rows_quarantined"].value == 3 and warned.metadata["bars_stored"].value == wed_bars
        assert warned.metadata["reasons"].value["high < low"] == 3
        assert "| 2026-10-14 09:01 |" in warned.metadata["quarantined_sample"].value
        assert "3 row(s) quarantined in rejected_candles" in warned.description
        assert evs[("m1", checks.QUARANTINE, TUE)].passed and evs[("m1", checks.QUARANTINE, THU)].passed
        for day in (TUE, WED, THU):  # every rule family of `schema` holds for the stored bars
            assert evs[("m1", checks.SCHEMA, day)].passed, day
            assert evs[("m1", checks.SCHEMA, day)].metadata["failing_rows"].value == 0
        assert evs[("m1", checks.SCHEMA, WED)].blocking
        assert evs[("m1", checks.SCHEMA, WED)].metadata["bars_stored"].value == wed_bars
        missing = evs[("m1", checks.ANSWER_COVERS_STORE, WED)]
        assert not missing.passed and missing.metadata["bars_missing_from_answer"].value == 3
        store.dispose()


def test_one_bad_provider_row_does_not_stop_the_day(env, database_url):
    """The issue's case: one bad bar used to fail `schema`, so the day's derived timeframes were not
    built by any refresh of that day, and each refresh quarantined the same row again."""
    env.set_faults(bad_rows=[_ms(f"{WED} 10:17")])
    bad_ts = pd.Timestamp(f"{WED} 10:17", tz="UTC")
    m1, h1 = AssetKey(["candles", "eurusd", "m1"]), AssetKey(["candles", "eurusd", "h1"])
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        summaries = _backfill(instance, "EURUSD", [Timeframe.M1, Timeframe.H1], WED, WED)
        assert all(s.success for s in summaries)
        first_run = summaries[0].run_id
        assert instance.get_materialized_partitions(m1) == {WED}
        assert instance.get_materialized_partitions(h1) == {WED}  # derived although a base row was refused
        stored = store.count("EURUSD", "M1")
        assert stored > 1000 and not store.read("EURUSD", "M1")["ts"].eq(bad_ts).any()
        h1_bars = store.read("EURUSD", "H1")
        assert len(h1_bars) == 24
        # the 10:00 bar is built from the stored minutes (the refused one not among them)
        ten = store.read("EURUSD", "M1", pd.Timestamp(f"{WED} 10:00", tz="UTC"), pd.Timestamp(f"{WED} 11:00", tz="UTC"))
        assert h1_bars.set_index("ts").loc[pd.Timestamp(f"{WED} 10:00", tz="UTC"), "volume"] == \
            pytest.approx(ten["volume"].sum())

        evs = _evaluations(instance, first_run)
        warned = evs[("m1", checks.QUARANTINE, WED)]
        assert not warned.passed and not warned.blocking and warned.severity.value == "WARN"
        rows = warned.metadata["quarantined_rows"].value
        assert [(r["ts"], r["times_seen"]) for r in rows] == [(bad_ts.isoformat(), 1)]
        assert "high < low" in rows[0]["reason"]
        assert evs[("m1", checks.SCHEMA, WED)].passed
        assert all(ev.passed for (asset, _, _), ev in evs.items() if asset == "h1")
        assert _ui_status(instance, "EURUSD", "m1", checks.QUARANTINE) == {Resolved.FAILED.value: {WED}}
        assert _ui_status(instance, "EURUSD", "m1", checks.SCHEMA) == {Resolved.SUCCEEDED.value: {WED}}
        assert _ui_status(instance, "EURUSD", "h1", checks.SCHEMA) == {Resolved.SUCCEEDED.value: {WED}}

        # nine more refreshes of the day: the same refused row is counted, not stored again
        defs = build_definitions(load_catalog())
        for _ in range(9):
            last = _backfill(instance, "EURUSD", [Timeframe.M1], WED, WED, defs)[0]
            assert last.success
        rejected = store.rejected("EURUSD")
        assert len(rejected) == 1
        row = rejected.iloc[0]
        assert (row["ts"], row["times_seen"], row["run_id"], row["last_run_id"]) == (bad_ts, 10, first_run, last.run_id)
        assert row["last_seen_at"] > row["rejected_at"]
        warned = _evaluations(instance, last.run_id)[("m1", checks.QUARANTINE, WED)]
        assert warned.metadata["quarantined_rows"].value[0]["times_seen"] == 10
        assert "up to 10 times" in warned.description
        assert store.count("EURUSD", "M1") == stored

        env.set_faults(bad_rows=[])  # the provider corrects the bar
        assert _backfill(instance, "EURUSD", [Timeframe.M1], WED, WED)[0].success
        assert store.count("EURUSD", "M1") == stored + 1
        assert _ui_status(instance, "EURUSD", "m1", checks.QUARANTINE) == {Resolved.SUCCEEDED.value: {WED}}
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


def _input(stored: pd.DataFrame, base: pd.DataFrame | None, tf: Timeframe, validated=None,
           times_seen=None) -> checks.CheckInput:
    """Tuesday's partition with `stored` bars; `validated` (default: `stored` validated) holds the
    rows refused before storage."""
    from massive_pipeline.core.calendars import get_calendar

    day = pd.Timestamp(TUE, tz="UTC")
    parts = [checks.PartitionWindow(TUE, day, day + pd.Timedelta(days=1))]
    validated = validate_bars(stored, tf) if validated is None else validated
    return checks.CheckInput(tf, get_calendar("forex"), parts, stored, validated, stored.iloc[:0], base,
                             now=pd.Timestamp("2026-11-01", tz="UTC"), times_seen=times_seen)


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
    # the bar itself is well-formed: only the agreement with the base fails
    assert found[checks.SCHEMA].metadata["failing_by_rule"].value == {checks.RULE_DERIVED: 1}


@pytest.mark.usefixtures("pipeline_env")
def test_stored_bars_that_break_a_rule_still_fail_the_blocking_checks(pipeline_env):
    with instance_for_test() as instance:
        _backfill(instance, "EURUSD", [Timeframe.M1], TUE, TUE)
        base = CandleStore().read("EURUSD", "M1")
    found = {f.check: f for f in checks.evaluate(_input(base, None, Timeframe.M1))}
    assert all(f.passed for f in found.values()), {k: f.description for k, f in found.items() if not f.passed}

    stored = base.copy()
    stored.loc[7, ["high", "low"]] = stored.loc[7, ["low", "high"]].to_numpy()  # a stored bar with high < low
    nothing_refused = validate_bars(stored.iloc[:0], Timeframe.M1)
    found = {f.check: f for f in checks.evaluate(_input(stored, None, Timeframe.M1, nothing_refused))}
    schema = found[checks.SCHEMA]
    assert not schema.passed and checks.CHECKS_BY_NAME[checks.SCHEMA].blocking
    assert schema.description.startswith("1 stored bar(s) fail: ") and "high < low" in schema.description
    assert f"{stored.loc[7, 'ts']:%Y-%m-%d %H:%M}" in schema.metadata["failing_sample"].value
    # the OHLC family fails, the one-bar-per-start family does not
    assert schema.metadata["failing_by_rule"].value == {checks.RULE_OHLC: 1}
    assert found[checks.QUARANTINE].passed


def test_quarantined_rows_alone_warn_and_block_nothing():
    day = pd.Timestamp(TUE, tz="UTC")
    ts = pd.date_range(day + pd.Timedelta(hours=9), periods=4, freq="1min", tz="UTC")
    fetched = pd.DataFrame({"ts": ts, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.1, "volume": 2.0})
    fetched["provider_problem"] = [None, "o is null", None, None]
    fetched.loc[1, "open"] = np.nan
    fetched.loc[2, ["high", "low"]] = [1.0, 1.2]
    validated = validate_bars(fetched, Timeframe.M1)
    inp = _input(validated.valid, None, Timeframe.M1, validated, times_seen=[3, None])
    found = {f.check: f for f in checks.evaluate(inp, {checks.SCHEMA, checks.QUARANTINE})}
    assert found[checks.SCHEMA].passed
    warned = found[checks.QUARANTINE]
    assert not warned.passed and checks.CHECKS_BY_NAME[checks.QUARANTINE].severity.value == "WARN"
    assert not checks.CHECKS_BY_NAME[checks.QUARANTINE].blocking
    assert warned.metadata["rows_quarantined"] == 2 and warned.metadata["bars_stored"] == 2
    assert warned.metadata["quarantined_rows"].value == [
        {"ts": "2026-10-13T09:01:00+00:00", "reason": "o is null; open missing", "times_seen": 3},
        {"ts": "2026-10-13T09:02:00+00:00", "reason": warned.metadata["quarantined_rows"].value[1]["reason"],
         "times_seen": None},
    ]
    assert "high < low" in warned.metadata["quarantined_rows"].value[1]["reason"]
    assert warned.metadata["reasons"].value["o is null"] == 1
    assert "up to 3 times" in warned.description and "other 2 bar(s) are stored" in warned.description


def test_six_checks_and_only_the_rule_check_blocks():
    assert [c.name for c in checks.CHECKS] == [
        "schema", "complete", "no_spikes", "stale_prices", "quarantine", "answer_covers_store",
    ]
    assert {c.name for c in checks.CHECKS if c.blocking} == {checks.SCHEMA}
    assert "stored" in checks.CHECKS_BY_NAME[checks.SCHEMA].description


def test_one_schema_record_per_partition_keeps_each_rule_familys_verdict():
    """Over a range with an off-grid bar (Tuesday), a bar with high < low (Wednesday) and a two-hour
    hole (Thursday): each partition's one `schema` record fails exactly where one of the former
    per-family checks (`grid_aligned`, `ohlc_consistent`) failed, names the family, and the other
    checks keep their own per-partition verdicts."""
    from massive_pipeline.core.calendars import get_calendar

    days = [pd.Timestamp(d, tz="UTC") for d in (TUE, WED, THU)]
    ts = pd.date_range(days[0], days[-1] + pd.Timedelta(days=1), freq="1min", tz="UTC", inclusive="left")
    rng = np.random.default_rng(7)
    close = 1.1 + np.cumsum(rng.normal(0, 1e-5, len(ts)))
    bars = pd.DataFrame({"ts": ts, "open": close, "high": close + 2e-5, "low": close - 2e-5, "close": close,
                         "volume": 3.0})
    hole = (bars["ts"] >= f"{THU} 10:00") & (bars["ts"] < f"{THU} 12:00")
    bars = bars[~hole].reset_index(drop=True)
    off_grid = bars.index[bars["ts"] == pd.Timestamp(f"{TUE} 09:00", tz="UTC")][0]
    bars.loc[off_grid, "ts"] += pd.Timedelta(seconds=30)
    inverted = bars.index[bars["ts"] == pd.Timestamp(f"{WED} 14:00", tz="UTC")][0]
    bars.loc[inverted, ["high", "low"]] = bars.loc[inverted, ["low", "high"]].to_numpy()
    parts = [checks.PartitionWindow(d.strftime("%Y-%m-%d"), d, d + pd.Timedelta(days=1)) for d in days]
    inp = checks.CheckInput(Timeframe.M1, get_calendar("forex"), parts, bars, validate_bars(bars.iloc[:0], Timeframe.M1),
                            bars.iloc[:0], now=pd.Timestamp("2026-11-01", tz="UTC"))

    findings = checks.evaluate(inp)
    by = {(f.check, f.partition): f for f in findings}
    assert len(findings) == len(checks.CHECKS) * 3  # one record per check and partition
    outcome = {c.name: [by[(c.name, d)].passed for d in (TUE, WED, THU)] for c in checks.CHECKS}
    assert outcome[checks.SCHEMA] == [False, False, True]
    assert outcome[checks.COMPLETE] == [True, True, False]
    for name in (checks.NO_SPIKES, checks.STALE_PRICES, checks.QUARANTINE, checks.ANSWER_COVERS_STORE):
        assert outcome[name] == [True, True, True], name
    assert by[(checks.SCHEMA, TUE)].metadata["failing_by_rule"].value == {checks.RULE_GRID: 1}
    assert by[(checks.SCHEMA, WED)].metadata["failing_by_rule"].value == {checks.RULE_OHLC: 1}
    assert "failing_by_rule" not in by[(checks.SCHEMA, THU)].metadata
    assert [by[(checks.SCHEMA, d)].metadata["failing_rows"] for d in (TUE, WED, THU)] == [1, 1, 0]
    assert by[(checks.COMPLETE, THU)].metadata["bars_missing"] == 120
    assert "| 2026-10-15 10:00 | 2026-10-15 12:00 | 120 |" in by[(checks.COMPLETE, THU)].metadata[
        "longest_missing_ranges"].value
