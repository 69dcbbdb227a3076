"""A ranged run written slice by slice is the same run as one written whole.

End to end against the bundled server, on SQLite and PostgreSQL: the server's pages are kept
small (`page_size`) so a two-week backfill spans many pages, and `MASSIVE_SLICE_BARS` decides
whether the step writes them as one slice or as many. The stored bars, the check results of
every partition, the materialization totals and the API requests must not depend on it; and a
short answer inside one slice keeps that slice's stored bars, as it does for a whole window.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, instance_for_test

from massive_pipeline.candles.slices import SLICE_BARS_ENV
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality.checks import CHECKS
from massive_pipeline.store import CandleStore

# Mon 2026-09-28 .. Sun 2026-10-11: two forex weeks, weekends included
START, END = dt.date(2026, 9, 28), dt.date(2026, 10, 11)
LO = pd.Timestamp(START, tz="UTC")
HI = pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)
TIMEFRAMES = [Timeframe.M1, Timeframe.H1, Timeframe.D1]
PAGE_BARS = 2_000  # a page holds about a trading day and a half of M1
SMALL_SLICE = 3_000  # M1: about two days a slice; H1 from M1: two days of base bars a slice
WHOLE = 10**9


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    pipeline_env.page_size = PAGE_BARS
    return pipeline_env


def _backfill(instance, monkeypatch, slice_bars: int):
    monkeypatch.setenv(SLICE_BARS_ENV, str(slice_bars))
    catalog = load_catalog()
    return run_candle_backfill(build_definitions(catalog), instance, [catalog.get("EURUSD")], TIMEFRAMES, START, END)


def _materializations(instance, run_id: str) -> dict[tuple[str, str], dict]:
    """{(timeframe, partition): metadata} of one run's materializations."""
    out = {}
    for tf in TIMEFRAMES:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(["candles", "eurusd", tf.key])), limit=1000).records
        for record in records:
            if record.run_id == run_id:
                mat = record.event_log_entry.asset_materialization
                out[(tf.value, mat.partition)] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _check_results(instance, run_id: str) -> dict[tuple[str, str, str], tuple]:
    """{(asset, check, partition): (passed, description, metadata, judged run)} of one run."""
    out = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        target = ev.target_materialization_data
        key = (ev.asset_key.path[-1], ev.check_name, ev.partition)
        assert key not in out, f"{key} evaluated twice"
        out[key] = (ev.passed, ev.description, {k: v.value for k, v in ev.metadata.items()},
                    target.run_id if target else None)
    return out


def _run(instance, monkeypatch, env, slice_bars: int):
    env.clear_requests()
    summaries = _backfill(instance, monkeypatch, slice_bars)
    (summary,) = summaries
    assert summary.success
    return summary, env.request_count(kind="aggs")


def _clear(store: CandleStore) -> None:
    for tf in TIMEFRAMES:
        store.delete_before("EURUSD", tf, HI + pd.Timedelta(days=7))


def test_many_slices_store_and_check_what_one_slice_does(env, monkeypatch, database_url):
    store = CandleStore(database_url)
    with instance_for_test() as instance:
        whole, whole_requests = _run(instance, monkeypatch, env, WHOLE)
        digest = {tf.value: store.checksum("EURUSD", tf) for tf in TIMEFRAMES}
        counts = {tf.value: store.count("EURUSD", tf) for tf in TIMEFRAMES}
        whole_meta = _materializations(instance, whole.run_id)
        whole_checks = _check_results(instance, whole.run_id)
        _clear(store)
        assert store.count("EURUSD", "M1") == 0

        sliced, sliced_requests = _run(instance, monkeypatch, env, SMALL_SLICE)
        sliced_meta = _materializations(instance, sliced.run_id)
        sliced_checks = _check_results(instance, sliced.run_id)

    assert {tf.value: store.checksum("EURUSD", tf) for tf in TIMEFRAMES} == digest
    assert {tf.value: store.count("EURUSD", tf) for tf in TIMEFRAMES} == counts
    assert counts["M1"] > 10 * 1300 and counts["D1"] == 12  # Sunday evenings trade
    # the pages are the slices' source: slicing spends no request of its own
    assert sliced_requests == whole_requests == sliced.api_requests > counts["M1"] // PAGE_BARS
    assert sliced.rows_written == whole.rows_written
    # one materialization per partition, its metadata the run's totals, whatever the slicing
    assert sorted(sliced_meta) == sorted(whole_meta) and len(whole_meta) == 3 * 14
    for key, meta in whole_meta.items():
        assert meta.pop("slices") == 1
        assert sliced_meta[key].pop("slices") > (1 if key[0] == "D1" else 4)
        assert sliced_meta[key] == meta, key
    # every partition's checks: the same verdicts, descriptions and figures, each judging its run
    assert len(whole_checks) == 3 * 14 * len(CHECKS)
    assert {k: v[:3] for k, v in sliced_checks.items()} == {k: v[:3] for k, v in whole_checks.items()}
    assert {v[3] for v in sliced_checks.values()} == {sliced.run_id}
    assert {v[3] for v in whole_checks.values()} == {whole.run_id}
    store.dispose()


def test_a_short_answer_in_a_middle_slice_keeps_its_stored_bars(env, monkeypatch, database_url):
    store = CandleStore(database_url)
    hole_lo, hole_hi = pd.Timestamp("2026-10-05", tz="UTC"), pd.Timestamp("2026-10-07 12:00", tz="UTC")
    with instance_for_test() as instance:
        _run(instance, monkeypatch, env, SMALL_SLICE)
        digest, counts = store.checksum("EURUSD"), {tf.value: store.count("EURUSD", tf) for tf in TIMEFRAMES}
        in_hole = store.count("EURUSD", "M1", hole_lo, hole_hi)
        assert in_hole > 2 * 1300

        env.set_faults(holes=[[hole_lo.value // 1_000_000, hole_hi.value // 1_000_000]])
        short, _ = _run(instance, monkeypatch, env, SMALL_SLICE)
        meta = _materializations(instance, short.run_id)
        checks = _check_results(instance, short.run_id)

    assert store.checksum("EURUSD") == digest
    assert {tf.value: store.count("EURUSD", tf) for tf in TIMEFRAMES} == counts
    assert short.missing_from_answer["M1"] == in_hole and short.removed["M1"] == 0
    assert meta[("M1", "2026-10-01")]["slices"] > 2 and meta[("M1", "2026-10-01")]["bars_missing_from_answer"] == in_hole
    lacking = {p for (asset, check, p), v in checks.items() if asset == "m1" and check == "answer_covers_store" and not v[0]}
    assert lacking == {"2026-10-05", "2026-10-06", "2026-10-07"}
    store.dispose()
