"""The lane executor's two ways of running a candle job, through real runs of the code location.

A run without execution config gets one subprocess per step (the lane limit applies); a run with
`IN_RUN_PROCESS_CONFIG`, which the schedules and sensors give their small refreshes, executes every
step in the run's own process. The step events' pids say which happened, and the store must hold
the same bars either way.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance, JobDefinition, build_reconstructable_job, execute_job

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import IN_RUN_PROCESS_CONFIG, job_name_for
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests import processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SYMBOL = "EURUSD"
TIMEFRAMES = (Timeframe.M1, Timeframe.H1, Timeframe.D1)
DAY = "2025-06-03"  # a Tuesday: forex trades all day


@functools.cache
def candle_job(job_name: str) -> JobDefinition:
    """The reconstructor the run (and each step subprocess) calls: the code location's job."""
    return build_definitions().resolve_job_def(job_name)


def _run(instance: DagsterInstance, run_config: dict) -> dict[str, int]:
    """Run the day through the job; each step's pid, from the run's own STEP_START events."""
    (spec,) = [s for s in load_catalog() if s.symbol == SYMBOL]
    job_name = job_name_for(spec, Timeframe.D1)
    # the step subprocesses import this module from the repository root to reconstruct the job
    recon = build_reconstructable_job(__name__, candle_job.__name__, reconstructable_args=(job_name,),
                                      reconstructor_working_directory=str(processes.ROOT))
    keys = [candle_key(SYMBOL, tf) for tf in TIMEFRAMES]
    with execute_job(recon, instance, run_config=run_config, tags={"dagster/partition": DAY},
                     asset_selection=keys) as result:
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        records = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_START)
    return {r.dagster_event.step_key: r.dagster_event.pid for r in records}


def _bars() -> dict[Timeframe, pd.DataFrame]:
    """The day's stored bars of each timeframe, without the write's own stamp."""
    store = CandleStore(os.environ["MASSIVE_DATABASE_URL"])
    try:
        day = pd.Timestamp(DAY, tz="UTC")
        return {tf: store.read(SYMBOL, tf, day, day + pd.Timedelta(days=1)).drop(columns=["ingested_at"])
                for tf in TIMEFRAMES}
    finally:
        store.dispose()


def test_a_small_run_keeps_its_steps_in_the_run_process_and_stores_the_same_bars(
    monkeypatch, pipeline_env: DevServer, tmp_path: Path,
) -> None:
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/subprocesses.sqlite")
    with DagsterInstance.get() as instance:
        pids = _run(instance, {})
        assert len(pids) == len(TIMEFRAMES)
        assert os.getpid() not in pids.values() and len(set(pids.values())) == len(TIMEFRAMES), pids
        by_subprocess = _bars()

        monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/in_run.sqlite")
        pids = _run(instance, dict(IN_RUN_PROCESS_CONFIG))
        assert set(pids.values()) == {os.getpid()}, pids  # execute_job runs the run in this process
        in_run = _bars()

    for tf in TIMEFRAMES:
        assert len(in_run[tf]) > 0, tf
        pd.testing.assert_frame_equal(in_run[tf], by_subprocess[tf], obj=f"{SYMBOL} {tf.value}")
