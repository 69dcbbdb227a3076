"""Stuck runs end: every automated run carries a maximum runtime sized to its purpose, and a refresh
run whose process was killed is failed by the daemon's run monitoring, after which the next tick
requests that symbol again.

Under the default run launcher (runs as subprocesses of the code server, `dagster dev` and the
compose stack alike) run monitoring cannot check a worker's health, so the maximum runtime is what
ends a run whose process died. The test kills a real refresh run's process mid-fetch and runs the
monitoring daemon's own iteration with Dagster's clock moved past that maximum, rather than waiting.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SkipReason,
    build_schedule_context,
)

from massive_pipeline.candles.assets import CRITICAL_POOL
from massive_pipeline.cli.launch import with_max_runtime
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.dagster_compat import monitor_runs_once
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.settings import (
    BACKFILL_RUNTIME_KEY,
    DAGSTER_MAX_RETRIES_TAG,
    DAGSTER_MAX_RUNTIME_TAG,
    DEFAULT_MAX_RUNTIME,
    MAX_RUNTIME_ENV,
    PURPOSE_TAG,
    SYMBOL_TAG,
    OperationsConfigError,
    OperationsSettings,
    Purpose,
    parse_max_runtime,
)
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline_tests.processes import start, wait_until

ROOT = Path(__file__).resolve().parents[2]
DAILY_SCHEDULE = "priority_refresh_daily_from_2025_06_01"
DAILY_JOB = "candles_daily_from_2025_06_01"
CRITICAL_LANE = (Purpose.PRIORITY_REFRESH.value, Purpose.SNAPSHOTS.value)

# The run a schedule requested, executed as its run worker executes it, in a process of its own.
RUN_WORKER = """
import json, sys
from dagster import AssetKey, DagsterInstance
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.definitions import build_definitions
job, keys, partition, tags = json.loads(sys.argv[1])
defs = build_definitions(load_catalog())
with DagsterInstance.get() as instance:
    defs.resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=[AssetKey(k) for k in keys], partition_key=partition, tags=tags,
        raise_on_error=False)
"""


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    """The 5-symbol test catalog on the bundled server, with the development instance's config
    (`dagster.yaml`: run monitoring and the lanes) in DAGSTER_HOME."""
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    monkeypatch.delenv(MAX_RUNTIME_ENV, raising=False)
    shutil.copy(ROOT / "dagster.yaml", Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")
    return pipeline_env


@pytest.fixture
def instance(env) -> Iterator[DagsterInstance]:
    with DagsterInstance.get() as inst:
        yield inst


@pytest.fixture
def defs(env):
    return build_definitions(load_catalog())


def _tick(defs, instance, name: str, at: str) -> list[RunRequest] | SkipReason:
    repo = defs.get_repository_def()
    with build_schedule_context(instance=instance, scheduled_execution_time=pd.Timestamp(at).to_pydatetime(),
                                resources={"candle_store": CandleStoreResource()}, repository_def=repo) as context:
        data = repo.get_schedule_def(name).evaluate_tick(context)
    return list(data.run_requests) if data.run_requests else SkipReason(data.skip_message)


def test_every_scheduled_run_carries_the_max_runtime_of_its_purpose(defs, instance):
    """Refresh, snapshots, re-sync (daily and W1), the W1 rebuild, detection and retention; the
    queue's and the gap fills' requests are checked by their own tests (test_queue.py,
    test_gap_fill_sensor.py). The critical lane's runs are not retried: the next tick replaces them."""
    seen = set()
    for schedule in defs.get_repository_def().schedule_defs:
        requests = _tick(defs, instance, schedule.name, "2026-10-07T12:05:00Z")
        assert not isinstance(requests, SkipReason), f"{schedule.name}: {requests.skip_message}"
        for request in requests:
            purpose = request.tags[PURPOSE_TAG]
            seen.add(purpose)
            assert request.tags[DAGSTER_MAX_RUNTIME_TAG] == str(DEFAULT_MAX_RUNTIME[purpose]), schedule.name
            assert (request.tags.get(DAGSTER_MAX_RETRIES_TAG) == "0") == (purpose in CRITICAL_LANE), schedule.name
    # the queue, the gap fill and the broker comparisons are requested by sensors (their tests check the tag)
    sensors = {Purpose.SECONDARY_REFRESH.value, Purpose.GAP_FILL.value, Purpose.BROKER_COMPARISON.value}
    assert seen == {p.value for p in Purpose} - sensors
    assert DEFAULT_MAX_RUNTIME[Purpose.PRIORITY_REFRESH.value] == 240  # a dead refresh ends within a tick or so
    assert DEFAULT_MAX_RUNTIME[BACKFILL_RUNTIME_KEY] >= 6 * 3600


def test_max_runtime_is_set_per_purpose_from_the_environment(monkeypatch):
    assert parse_max_runtime(None) == DEFAULT_MAX_RUNTIME
    parsed = parse_max_runtime("priority_refresh=3m, backfill=24h,resync=900")
    assert parsed["priority_refresh"] == 180 and parsed["backfill"] == 86400 and parsed["resync"] == 900
    assert parsed["gap_fill"] == DEFAULT_MAX_RUNTIME["gap_fill"]  # the others keep their default
    for bad, words in [("refresh=5m", "unknown purpose 'refresh'"), ("resync=0", "positive duration"),
                       ("resync=5d", "positive duration"), ("resync", "PURPOSE=DURATION")]:
        with pytest.raises(OperationsConfigError, match=words):
            parse_max_runtime(bad)
    monkeypatch.setenv(MAX_RUNTIME_ENV, "snapshots=2m")
    settings = OperationsSettings.from_env()
    assert settings.runtime_tags(Purpose.SNAPSHOTS) == {DAGSTER_MAX_RUNTIME_TAG: "120"}
    assert OperationsSettings(max_runtime={"gap_fill": 60}).max_runtime["resync"] == DEFAULT_MAX_RUNTIME["resync"]
    with pytest.raises(OperationsConfigError, match="unknown purpose"):
        OperationsSettings(max_runtime={"nightly": 60})
    # the command line's in-process runs: a backfill's maximum, or their purpose's; a tag set by hand wins
    assert with_max_runtime({}, settings) == {DAGSTER_MAX_RUNTIME_TAG: str(DEFAULT_MAX_RUNTIME["backfill"])}
    assert with_max_runtime({PURPOSE_TAG: "gap_fill"}, settings)[DAGSTER_MAX_RUNTIME_TAG] == "3600"
    assert with_max_runtime({DAGSTER_MAX_RUNTIME_TAG: "60"}, settings)[DAGSTER_MAX_RUNTIME_TAG] == "60"


def _refresh_runs(instance: DagsterInstance, symbol: str):
    return instance.get_run_records(RunsFilter(tags={PURPOSE_TAG: Purpose.PRIORITY_REFRESH.value, SYMBOL_TAG: symbol}))


def test_a_refresh_whose_process_died_is_failed_by_run_monitoring_and_requested_again(env, defs, instance, tmp_path):
    requests = {r.tags[SYMBOL_TAG]: r for r in _tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:05:00Z")}
    request = requests["EURUSD"]
    assert request.tags[DAGSTER_MAX_RUNTIME_TAG] == "240" and request.tags[DAGSTER_MAX_RETRIES_TAG] == "0"

    env.set_faults(delay_seconds=120.0)  # the provider stalls: the run is caught in its fetch
    spec = json.dumps([DAILY_JOB, [k.path for k in request.asset_selection], request.partition_key,
                       dict(request.tags)])
    worker = start([sys.executable, "-c", RUN_WORKER, spec], env=dict(os.environ), log=tmp_path / "worker.log",
                   name="refresh run worker")
    try:
        # started, and its M1 step holds its slot in the critical lane's pool
        wait_until(lambda: instance.event_log_storage.get_concurrency_info(CRITICAL_POOL).active_slot_count == 1,
                   timeout=60, what="the refresh run's fetch step holding its pool slot", on_timeout=worker.output)
        [record] = _refresh_runs(instance, "EURUSD")
        assert record.dagster_run.status == DagsterRunStatus.STARTED
    finally:
        worker.kill9()
        env.set_faults(delay_seconds=0.0)
    run_id, started = record.dagster_run.run_id, record.start_time
    assert started is not None

    # nothing else ends it: the run stays STARTED, and the next tick skips the symbol
    later = _tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:10:00Z")
    assert "EURUSD" not in {r.tags[SYMBOL_TAG] for r in later}
    monitor_runs_once(instance)  # now: within its 4 minutes, and the default launcher has no health check
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED

    # run monitoring, once the 4 minutes have passed, fails it
    monitor_runs_once(instance, at=started + 241)
    failed = instance.get_run_record_by_id(run_id)
    assert failed.dagster_run.status == DagsterRunStatus.FAILURE
    messages = " ".join(e.message or "" for e in instance.all_logs(run_id))
    assert "exceeding maximum runtime of 240 seconds" in messages
    # its pool slot is given back `free_slots_after_run_end_seconds` (60 s) after the end
    assert instance.event_log_storage.get_concurrency_info(CRITICAL_POOL).active_slot_count == 1
    monitor_runs_once(instance, at=failed.end_time + 61)
    assert instance.event_log_storage.get_concurrency_info(CRITICAL_POOL).active_slot_count == 0

    # and the next tick requests the symbol again
    again = {r.tags[SYMBOL_TAG]: r for r in _tick(defs, instance, DAILY_SCHEDULE, "2026-10-07T12:15:00Z")}
    assert "EURUSD" in again
