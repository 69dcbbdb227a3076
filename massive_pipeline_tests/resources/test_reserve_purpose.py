"""Which runs take the limiter's critical reserve: decided by the run's purpose, not by the symbol.

The runs are the pipeline's own (the CLI's backfill, the runs the schedules request), against the
bundled server, and the limiter's shared statistics say how many of their requests were critical.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pandas as pd
import pytest
from dagster import DagsterInstance, RunRequest, build_schedule_context

from massive_pipeline.cli import main
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.operations.settings import PURPOSE_TAG, SYMBOL_TAG, Purpose
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import PURPOSE_TAG as RESOURCE_PURPOSE_TAG
from massive_pipeline.resources.massive import RESERVE_PURPOSES, uses_critical_reserve


def test_only_the_priority_refresh_and_the_snapshots_use_the_reserve():
    assert RESOURCE_PURPOSE_TAG == PURPOSE_TAG
    assert set(RESERVE_PURPOSES) == {Purpose.PRIORITY_REFRESH.value, Purpose.SNAPSHOTS.value}
    for purpose in Purpose:
        expected = purpose in (Purpose.PRIORITY_REFRESH, Purpose.SNAPSHOTS)
        assert uses_critical_reserve({PURPOSE_TAG: purpose.value}) is expected, purpose
    for tags in ({}, {PURPOSE_TAG: "cli_backfill"}, {PURPOSE_TAG: "demo"}, {"massive/priority": "critical"}):
        assert not uses_critical_reserve(tags), tags


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    return pipeline_env


def _tick(defs, instance: DagsterInstance, name: str, at: str) -> list[RunRequest]:
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def(name)
    when = pd.Timestamp(at).to_pydatetime()
    with build_schedule_context(instance=instance, scheduled_execution_time=when,
                                resources={"candle_store": CandleStoreResource()}, repository_def=repo) as context:
        data = schedule.evaluate_tick(context)
    assert data.run_requests, data.skip_message
    return list(data.run_requests)


def _execute(defs, instance: DagsterInstance, request: RunRequest, job_name: str | None = None) -> None:
    """The run the daemon would launch for `request` (its job, partition and tags), limited to the
    fetched base timeframe: the derived timeframes send no requests, and their steps cost seconds."""
    job = defs.resolve_job_def(request.job_name or job_name)
    selection = [key for key in request.asset_selection or () if key.path[-1] == Timeframe.M1.key]
    result = job.execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags,
        asset_selection=selection or None,
    )
    assert result.success


def test_a_critical_symbols_backfill_is_ordinary_work_and_its_refresh_is_critical(env):
    limiter = SharedRateLimiter(100_000, 60.0, backend_url=os.environ["MASSIVE_RATE_LIMIT_URL"])
    defs = build_definitions()
    instance = DagsterInstance.get()

    def spent(step: Callable[[], object]) -> tuple[int, int, int]:
        """(requests the server answered, tokens taken, of which critical) during `step`."""
        served, before = env.request_count(None), limiter.stats()
        step()
        after = limiter.stats()
        return (env.request_count(None) - served, after.acquired - before.acquired,
                after.acquired_critical - before.acquired_critical)

    def one_for(symbol: str, requests: list[RunRequest]) -> RunRequest:
        [request] = [r for r in requests if r.tags.get(SYMBOL_TAG) == symbol]
        return request

    # EURUSD is a critical symbol; a backfill of it from the command line is ordinary work
    env.now = "2026-10-07T12:04:30Z"
    backfill = spent(lambda: main(["backfill", "--symbols", "EURUSD", "--timeframes", "M1",
                                   "--start", "2026-10-06", "--end", "2026-10-07"]))
    assert backfill[0] == backfill[1] > 0 and backfill[2] == 0, backfill

    # the 5-minute priority refresh of the same symbol takes the reserve
    refresh = one_for("EURUSD", _tick(defs, instance, "priority_refresh_daily_from_2025_06_01",
                                      "2026-10-07T12:05:00Z"))
    assert refresh.tags[PURPOSE_TAG] == Purpose.PRIORITY_REFRESH.value
    served, taken, critical = spent(lambda: _execute(defs, instance, refresh))
    assert served == taken == critical > 0, (served, taken, critical)

    # so does the snapshot run the schedule requests; a snapshot taken by hand does not
    [snapshot] = _tick(defs, instance, "priority_refresh_snapshots", "2026-10-07T12:05:00Z")
    served, taken, critical = spent(lambda: _execute(defs, instance, snapshot, "snapshots_job"))
    assert served == taken == critical > 0, (served, taken, critical)
    by_hand = spent(lambda: _execute(defs, instance, RunRequest(), "snapshots_job"))
    assert by_hand[0] == by_hand[1] > 0 and by_hand[2] == 0, by_hand

    # the 04:00 re-sync of the critical symbol is ordinary work again
    env.now = "2026-10-08T04:00:30Z"
    resync = one_for("EURUSD", _tick(defs, instance, "resync_daily_from_2025_06_01", "2026-10-08T04:00:00Z"))
    assert resync.tags[PURPOSE_TAG] == Purpose.RESYNC.value
    served, taken, critical = spent(lambda: _execute(defs, instance, resync))
    assert served == taken > 0 and critical == 0, (served, taken, critical)
    limiter.close()
