"""The 5-minute priority refresh, the daily and weekly schedules, evaluated on a real instance.

Bars come from the bundled server with its clock set to the tick, through the pipeline's own
backfill runs, so the schedules see exactly what the store would hold at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    instance_for_test,
    validate_run_config,
)
from dagster._core.utils import make_new_run_id

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.runs import requested_partitions
from massive_pipeline.operations.schedules import (
    GAP_DETECTION_JOB,
    gap_schedules,
)
from massive_pipeline.operations.settings import (
    PURPOSE_TAG,
    REQUESTED_AT_TAG,
    SYMBOL_TAG,
    OperationsConfigError,
    OperationsSettings,
    parse_retention,
)
from massive_pipeline.quality.definitions import build_quality_definitions
from massive_pipeline.resources.candle_store import CandleStoreResource

DAILY_JOB = "candles_daily_from_2025_06_01"
WEEKLY_JOB = "candles_weekly_from_2025_06_01"
DAILY_NY_JOB, WEEKLY_NY_JOB = "candles_daily_ny_from_2025_06_01", "candles_weekly_ny_from_2025_06_01"
DAILY_SCHEDULE = "priority_refresh_daily_from_2025_06_01"
WEEKLY_SCHEDULE = "priority_refresh_weekly_from_2025_06_01"
CRITICAL = ("EURUSD", "XAUUSD", "BTCUSD")
DAILY_TFS = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1, Timeframe.H4, Timeframe.D1)


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    return pipeline_env


@pytest.fixture
def instance(env) -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def defs(env):
    return build_definitions(load_catalog())


def _seed(server, defs, instance, symbols, first: dt.date, last: dt.date, server_now: str) -> None:
    """Store the M1 bars the server has for first..last as of `server_now`."""
    server.now = server_now
    catalog = load_catalog()
    run_candle_backfill(defs, instance, [catalog.get(s) for s in symbols], [Timeframe.M1], first, last)


def _tick(defs, instance, name: str, at: str) -> list[RunRequest] | SkipReason:
    schedule = defs.get_repository_def().get_schedule_def(name)
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=pd.Timestamp(at).to_pydatetime(),
        resources={"candle_store": CandleStoreResource()},
        repository_def=defs.get_repository_def(),
    ) as context:
        data = schedule.evaluate_tick(context)
    return list(data.run_requests) if data.run_requests else SkipReason(data.skip_message)


def _by_symbol(requests: list[RunRequest]) -> dict[str, RunRequest]:
    out = {r.tags[SYMBOL_TAG]: r for r in requests}
    assert len(out) == len(requests), "one request per symbol"
    return out


def _add_run(instance, job_name: str, status: DagsterRunStatus, tags: dict[str, str]) -> str:
    run = DagsterRun(job_name=job_name, run_id=make_new_run_id(), status=status, tags=tags)
    instance.add_run(run)
    return run.run_id


def test_weekday_1205_refreshes_today_for_every_critical_symbol(env, defs, instance):
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 7), dt.date(2026, 10, 7), "2026-10-07T12:04:30Z")
    daily = _tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:05:00Z")
    assert not isinstance(daily, SkipReason), daily
    by_symbol = _by_symbol(daily)
    assert sorted(by_symbol) == sorted(CRITICAL)
    for symbol, request in by_symbol.items():
        assert request.job_name == DAILY_JOB
        assert requested_partitions(request) == ("2026-10-07", "2026-10-07")
        assert request.partition_key == "2026-10-07"
        assert set(request.asset_selection) == {candle_key(symbol, tf) for tf in DAILY_TFS}
        assert request.tags[PURPOSE_TAG] == "priority_refresh"
        assert request.tags[REQUESTED_AT_TAG] == "2026-10-07T12:05:00Z"
        assert request.run_key  # several requests per tick need keys

    weekly = _by_symbol(_tick(defs, instance, WEEKLY_SCHEDULE, "2026-10-07T12:05:00Z"))
    assert sorted(weekly) == sorted(CRITICAL)
    for symbol, request in weekly.items():
        assert request.job_name == WEEKLY_JOB
        assert request.partition_key == "2026-10-05"  # the Monday of that week
        assert list(request.asset_selection) == [candle_key(symbol, Timeframe.W1)]

    [snapshot] = _tick(defs, instance, "priority_refresh_snapshots", "2026-10-07T12:05:00Z")
    assert defs.get_repository_def().get_schedule_def("priority_refresh_snapshots").job_name == "snapshots_job"
    assert snapshot.tags[PURPOSE_TAG] == "snapshots"


def test_just_after_midnight_the_previous_day_is_refreshed_too(env, defs, instance):
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 6), dt.date(2026, 10, 7), "2026-10-07T00:01:30Z")
    by_symbol = _by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T00:02:00Z"))
    assert sorted(by_symbol) == sorted(CRITICAL)
    for request in by_symbol.values():
        assert requested_partitions(request) == ("2026-10-06", "2026-10-07")
        assert request.partition_key is None  # a range travels in the range tags
    # a quarter of an hour later only today's partition is asked for
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 7), dt.date(2026, 10, 7), "2026-10-07T00:29:30Z")
    later = _by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T00:30:00Z"))
    assert {requested_partitions(r) for r in later.values()} == {("2026-10-07", "2026-10-07")}
    # Monday just after midnight: the week that just ended is rebuilt with the new one
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 11), dt.date(2026, 10, 12), "2026-10-12T00:01:30Z")
    weekly = _by_symbol(_tick(defs, instance, WEEKLY_SCHEDULE, "2026-10-12T00:02:00Z"))
    assert {requested_partitions(r) for r in weekly.values()} == {("2026-10-05", "2026-10-12")}


def test_saturday_only_crypto_needs_fresh_bars(env, defs, instance):
    # Friday's session (and Saturday's crypto) are in the store, as the refresh left them
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 9), dt.date(2026, 10, 10), "2026-10-10T12:04:30Z")
    daily = _tick(defs, instance, DAILY_SCHEDULE, "2026-10-10T12:05:00Z")
    by_symbol = _by_symbol(daily)
    assert sorted(by_symbol) == ["BTCUSD"]
    assert requested_partitions(by_symbol["BTCUSD"]) == ("2026-10-10", "2026-10-10")
    weekly = _by_symbol(_tick(defs, instance, WEEKLY_SCHEDULE, "2026-10-10T12:05:00Z"))
    assert sorted(weekly) == ["BTCUSD"]


def test_saturday_with_fridays_close_missing_refreshes_friday_once(env, defs, instance):
    # the store stopped at 18:00 UTC on Friday; forex closed at 21:00 UTC (17:00 New York, EDT)
    _seed(env, defs, instance, ["EURUSD"], dt.date(2026, 10, 9), dt.date(2026, 10, 9), "2026-10-09T18:00:00Z")
    by_symbol = _by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-10T12:05:00Z"))
    assert requested_partitions(by_symbol["EURUSD"]) == ("2026-10-09", "2026-10-09")  # Friday, not Saturday
    assert "XAUUSD" in by_symbol  # nothing stored at all: its Friday is fetched too
    # once a refresh requested after the close has succeeded, a closed market is left alone
    _add_run(instance, DAILY_JOB, DagsterRunStatus.SUCCESS, {
        PURPOSE_TAG: "priority_refresh", SYMBOL_TAG: "EURUSD", REQUESTED_AT_TAG: "2026-10-10T12:05:00Z"})
    again = _tick(defs, instance, DAILY_SCHEDULE, "2026-10-10T12:10:00Z")
    assert "EURUSD" not in _by_symbol(again)


def test_a_run_still_in_progress_is_not_duplicated(env, defs, instance):
    _seed(env, defs, instance, CRITICAL, dt.date(2026, 10, 7), dt.date(2026, 10, 7), "2026-10-07T12:04:30Z")
    running = _add_run(instance, DAILY_JOB, DagsterRunStatus.STARTED,
                       {PURPOSE_TAG: "priority_refresh", SYMBOL_TAG: "EURUSD"})
    by_symbol = _by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:05:00Z"))
    assert sorted(by_symbol) == ["BTCUSD", "XAUUSD"]
    # a run created but not yet started (as the daemon creates them) counts too; a finished one does not
    _add_run(instance, DAILY_JOB, DagsterRunStatus.NOT_STARTED, {PURPOSE_TAG: "priority_refresh", SYMBOL_TAG: "BTCUSD"})
    assert sorted(_by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:10:00Z"))) == ["XAUUSD"]
    instance.report_run_failed(instance.get_run_by_id(running))
    assert "EURUSD" in _by_symbol(_tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:15:00Z"))
    # the weekly runs are deduplicated on their own job
    assert sorted(_by_symbol(_tick(defs, instance, WEEKLY_SCHEDULE, "2026-10-07T12:15:00Z"))) == sorted(CRITICAL)

    _add_run(instance, "snapshots_job", DagsterRunStatus.STARTED, {PURPOSE_TAG: "snapshots"})
    skipped = _tick(defs, instance, "priority_refresh_snapshots", "2026-10-07T12:15:00Z")
    assert isinstance(skipped, SkipReason) and "still in progress" in skipped.skip_message


def test_resync_asks_for_the_last_three_days_of_every_symbol(env, defs, instance):
    requests = _tick(defs, instance, "resync_daily_from_2025_06_01", "2026-10-07T04:00:00Z")
    by_symbol = _by_symbol(requests)
    assert sorted(by_symbol) == sorted(s.symbol for s in load_catalog())
    for symbol, request in by_symbol.items():
        assert requested_partitions(request) == ("2026-10-04", "2026-10-06")
        assert request.tags[PURPOSE_TAG] == "resync"
        assert candle_key(symbol, Timeframe.M1) in request.asset_selection
    assert set(by_symbol["SPX500"].asset_selection) >= {candle_key("SPX500", Timeframe.D1)}
    weekly = _tick(defs, instance, "resync_weekly_from_2025_06_01", "2026-10-07T04:30:00Z")
    [week] = weekly
    assert requested_partitions(week) == ("2026-09-28", "2026-10-05")  # weeks holding Oct 4 .. Oct 7
    assert len(week.asset_selection) == len(load_catalog())


def test_hourly_weekly_refresh_covers_the_non_critical_symbols(env, defs, instance):
    [request] = _tick(defs, instance, "weekly_refresh_weekly_from_2025_06_01", "2026-10-07T13:07:00Z")
    assert set(request.asset_selection) == {candle_key(s, Timeframe.W1) for s in ("GBPUSD", "SPX500")}
    assert request.partition_key == "2026-10-05"


def test_hourly_refresh_rebuilds_the_current_new_york_sessions_of_forex_and_metals(env, defs, instance):
    # Wednesday 13:07 UTC: yesterday and today (UTC) overlap the New York sessions opening Monday,
    # Tuesday and Wednesday at 17:00 New York; the critical symbols are rebuilt here too, crypto and
    # the index have no New York convention
    [daily] = _tick(defs, instance, "hourly_refresh_daily_ny_from_2025_06_01", "2026-10-07T13:07:00Z")
    assert set(daily.asset_selection) == {candle_key(s, Timeframe.D1_NY) for s in ("EURUSD", "XAUUSD", "GBPUSD")}
    assert requested_partitions(daily) == ("2026-10-05", "2026-10-07")
    assert daily.job_name == DAILY_NY_JOB
    [weekly] = _tick(defs, instance, "hourly_refresh_weekly_ny_from_2025_06_01", "2026-10-07T13:07:00Z")
    assert set(weekly.asset_selection) == {candle_key(s, Timeframe.W1_NY) for s in ("EURUSD", "XAUUSD", "GBPUSD")}
    assert weekly.partition_key == "2026-10-04"  # the week opening Sunday 4 October, 17:00 New York


def test_resync_rebuilds_the_new_york_sessions_of_the_resynced_days(env, defs, instance):
    [daily] = _tick(defs, instance, "resync_derived_daily_ny_from_2025_06_01", "2026-10-07T04:30:00Z")
    # UTC days Oct 4 .. Oct 7 start inside the New York session opening Saturday Oct 3 at 17:00
    assert requested_partitions(daily) == ("2026-10-03", "2026-10-07")
    assert daily.tags[PURPOSE_TAG] == "resync"
    assert len(daily.asset_selection) == 3


def test_retention_schedule_passes_its_day_and_limits(env, defs, instance):
    [request] = _tick(defs, instance, "weekly_retention", "2026-10-11T03:00:00Z")
    config = request.run_config["ops"]["apply_retention"]["config"]
    assert config["as_of"] == "2026-10-11"
    assert config["keep_days"] == {"M1": 730}
    assert defs.get_repository_def().get_schedule_def("weekly_retention").job_name == "retention_job"


def test_schedules_and_sensors_run_by_default_in_utc(defs):
    repo = defs.get_repository_def()
    schedules = list(repo.schedule_defs)
    expected = {DAILY_SCHEDULE, WEEKLY_SCHEDULE, "priority_refresh_snapshots", "resync_daily_from_2025_06_01",
                "resync_weekly_from_2025_06_01", "weekly_refresh_weekly_from_2025_06_01", "weekly_retention"}
    assert expected <= {s.name for s in schedules}
    for s in schedules:
        assert s.default_status is DefaultScheduleStatus.RUNNING, s.name
        assert s.execution_timezone == "UTC", s.name
    crons = {s.name: s.cron_schedule for s in schedules}
    assert crons[DAILY_SCHEDULE] == "*/5 * * * *"
    assert crons["resync_daily_from_2025_06_01"] == "0 4 * * *"
    assert crons["weekly_retention"] == "0 3 * * 0"
    sensors = {s.name: s for s in repo.sensor_defs}
    assert {"secondary_queue", "sync_status_on_failure"} <= set(sensors)
    assert all(s.default_status is DefaultSensorStatus.RUNNING for s in sensors.values())


def test_gap_detection_at_five_and_the_gap_fill_sensor_for_six(defs, instance):
    repo = defs.get_repository_def()
    for name, job_name, cron, purpose, at in (
        ("gap_detection", GAP_DETECTION_JOB, "0 5 * * *", "gap_detection", "2026-10-07T05:00:00Z"),
    ):
        schedule = repo.get_schedule_def(name)  # part of the code location, next to the quality jobs
        assert schedule.job_name == job_name and schedule.cron_schedule == cron
        assert schedule.default_status is DefaultScheduleStatus.RUNNING and schedule.execution_timezone == "UTC"
        with build_schedule_context(instance=instance, scheduled_execution_time=pd.Timestamp(at).to_pydatetime(),
                                    repository_def=repo) as context:
            [request] = schedule.evaluate_tick(context).run_requests
        assert request.tags[PURPOSE_TAG] == purpose
        assert validate_run_config(repo.get_job(job_name), request.run_config)  # the job's defaults suffice
    # the schedule comes with the job it names, and the fills with their sensor, from the quality part
    quality = build_quality_definitions(load_catalog(), OperationsSettings())
    assert {s.name: s.job_name for s in quality.schedules} == {"gap_detection": GAP_DETECTION_JOB}
    assert {j.name for j in quality.jobs} == {GAP_DETECTION_JOB}
    assert {s.name for s in gap_schedules(OperationsSettings())} == {"gap_detection"}
    [gap_fill] = quality.sensors
    assert gap_fill.name == "gap_fill_sensor" and gap_fill.default_status is DefaultSensorStatus.RUNNING
    # fills run in the daily and weekly jobs, their W1 / D1_NY / W1_NY re-derivations in the jobs of those
    assert {j.name for j in gap_fill.jobs} == {DAILY_JOB, WEEKLY_JOB, DAILY_NY_JOB, WEEKLY_NY_JOB}


def test_automation_can_start_stopped_and_bad_settings_are_named(monkeypatch):
    settings = OperationsSettings.from_env({"MASSIVE_AUTOMATION": "stopped"})
    assert settings.schedule_status is DefaultScheduleStatus.STOPPED
    assert settings.sensor_status is DefaultSensorStatus.STOPPED
    with pytest.raises(OperationsConfigError, match="MASSIVE_AUTOMATION"):
        OperationsSettings.from_env({"MASSIVE_AUTOMATION": "maybe"})
    with pytest.raises(OperationsConfigError, match="MASSIVE_RESYNC_DAYS"):
        OperationsSettings.from_env({"MASSIVE_RESYNC_DAYS": "three"})
    assert parse_retention("M1=365, 5m=730") == {Timeframe.M1: 365, Timeframe.M5: 730}
    assert parse_retention("none") == {}
    with pytest.raises(OperationsConfigError, match="MASSIVE_RETENTION_DAYS.*M7"):
        parse_retention("M7=10")
