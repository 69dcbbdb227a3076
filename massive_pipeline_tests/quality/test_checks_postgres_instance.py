"""The per-partition check records of a ranged run on the production instance (dagster-postgres),
where the run's partition materializations are written in batches: every evaluation still judges
its own partition's materialization, so the UI's Checks tab shows each day's result."""

from __future__ import annotations

import datetime as dt
import os

from dagster import AssetCheckKey, AssetKey, DagsterEventType, instance_for_test
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionResolvedStatus as Resolved
from dagster._core.storage.asset_check_state import AssetCheckState, bulk_update_asset_check_state
from sqlalchemy.engine import make_url

from massive_pipeline.candles.event_batching import EVENT_BATCH_SIZE_ENV
from massive_pipeline.candles.partitions import daily_partitions
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.quality import checks

TUE, WED, THU = "2026-10-13", "2026-10-14", "2026-10-15"


def _postgres_instance_overrides(url: str) -> dict:
    dagster_url = make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return {
        storage: {"module": module, "class": cls, "config": {"postgres_url": dagster_url}}
        for storage, module, cls in (
            ("run_storage", "dagster_postgres.run_storage", "PostgresRunStorage"),
            ("event_log_storage", "dagster_postgres.event_log", "PostgresEventLogStorage"),
            ("schedule_storage", "dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
        )
    }


def _status(instance, tf: str, check: str) -> dict[str, set[str]]:
    key = AssetCheckKey(AssetKey(["candles", "eurusd", tf]), check)
    pdef = daily_partitions(dt.date(2025, 6, 1))
    state = bulk_update_asset_check_state(instance, [(key, pdef)], {key: AssetCheckState.empty()})[key]
    return {s.value: set(sub.value.get_partition_keys()) for s, sub in state.subsets.items() if not sub.is_empty}


def test_a_ranged_run_on_postgres_shows_each_partitions_checks(pipeline_env, monkeypatch, tmp_path, postgres_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    wed_bad = int(dt.datetime(2026, 10, 14, 9, 30, tzinfo=dt.UTC).timestamp() * 1000)
    pipeline_env.set_faults(bad_rows=[wed_bad])
    catalog = load_catalog()
    with instance_for_test(overrides=_postgres_instance_overrides(postgres_url)) as instance:
        summaries = run_candle_backfill(
            build_definitions(catalog), instance, [catalog.get("EURUSD")], [Timeframe.M1, Timeframe.H1],
            dt.date.fromisoformat(TUE), dt.date.fromisoformat(THU),
        )
        assert all(s.success for s in summaries)
        run_id = summaries[0].run_id
        mats = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        by_partition = {(r.event_log_entry.dagster_event.asset_key.path[-1], r.event_log_entry.dagster_event.partition):
                        r.storage_id for r in mats}
        assert set(by_partition) == {(tf, d) for tf in ("m1", "h1") for d in (TUE, WED, THU)}
        evaluations = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        for record in evaluations:  # each evaluation judges its own partition's materialization
            ev = record.event_log_entry.dagster_event.event_specific_data
            assert ev.target_materialization_data.storage_id == by_partition[(ev.asset_key.path[-1], ev.partition)]
        assert len(evaluations) == 2 * 3 * len(checks.CHECKS)
        assert EVENT_BATCH_SIZE_ENV not in os.environ  # scoped to the run
        days = {TUE, WED, THU}
        assert _status(instance, "m1", checks.SCHEMA) == {Resolved.SUCCEEDED.value: days}
        assert _status(instance, "m1", checks.QUARANTINE) == {Resolved.FAILED.value: {WED},
                                                             Resolved.SUCCEEDED.value: {TUE, THU}}
        assert _status(instance, "h1", checks.COMPLETE) == {Resolved.SUCCEEDED.value: days}
