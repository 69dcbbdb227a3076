"""The candle jobs on Dagster's distributed executor: dagster-celery over the machine's broker.

Two Celery workers run as separate processes (`celery -A massive_pipeline.candles.celery_worker`,
distinct node names), a run of the code location's daily candle job with `MASSIVE_EXECUTOR=celery`
goes through a real DagsterInstance, and the test checks, from the run's own event log, that every
step executed in a worker (the worker's engine event names it, and the step's pid is a child of
that worker's process), that both workers took steps, that the workers used the store and the
limiter the environment names, and that the store then holds exactly the bars of the same job run
in-process on a second store. The broker is `MASSIVE_TEST_CELERY_BROKER` (default the local
RabbitMQ); a broker that does not answer fails the test, it never skips.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    JobDefinition,
    build_reconstructable_job,
    execute_job,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.celery_executor import (
    BACKEND_ENV,
    BROKER_ENV,
    CELERY_QUEUE,
    DEFAULT_BROKER,
    EXECUTOR_ENV,
    ExecutorChoiceError,
)
from massive_pipeline.candles.jobs import job_name_for, lane_executor
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from massive_pipeline.definitions import build_definitions
from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests import processes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    # dagster-celery 0.29.27 registers its task again on the executor's app for every step it submits;
    # Celery 5.7 warns that the name exists (the callable is the same one, so nothing changes)
    pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning"),
]

BROKER = os.environ.get("MASSIVE_TEST_CELERY_BROKER", DEFAULT_BROKER)
WORKERS = ("worker1", "worker2")
SYMBOLS = ("EURUSD", "GBPUSD")
# the fetched base and two derived timeframes: two M1 steps at once, then four steps that read them
TIMEFRAMES = (Timeframe.M1, Timeframe.H1, Timeframe.D1)
FIRST, LAST = "2025-06-02", "2025-06-03"  # a Monday and a Tuesday: forex trades all day
WORKER_EVENT_KEY = "Celery worker"  # the metadata entry of dagster-celery's "Executing steps" engine event


@functools.cache
def candle_job(job_name: str) -> JobDefinition:
    """The reconstructor the run and each worker call: the code location's job as this process's
    environment composes it (the workers' environment names the celery executor, store and limiter)."""
    return build_definitions().resolve_job_def(job_name)


def test_the_code_location_stays_multiprocess_unless_celery_is_asked_for(monkeypatch) -> None:
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert lane_executor().name == "multiprocess_lanes"
    monkeypatch.setenv(EXECUTOR_ENV, " Celery ")
    assert lane_executor().name == "celery_lanes"
    monkeypatch.setenv(EXECUTOR_ENV, "dask")
    with pytest.raises(ExecutorChoiceError) as err:
        build_definitions()
    assert str(err.value) == "MASSIVE_EXECUTOR='dask' is not an executor; use one of: multiprocess, celery"


def _broker_connection_error() -> str | None:
    from kombu import Connection

    try:
        with Connection(BROKER, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the broker is the one message
        return f"{type(exc).__name__}: {exc}"
    return None


def _queue_consumers() -> int:
    """Consumers of dagster-celery's queue as the broker counts them (0 when it does not exist)."""
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as conn:
        try:
            return conn.default_channel.queue_declare(queue=CELERY_QUEUE, passive=True).consumer_count
        except conn.channel_errors:  # no such queue: nobody consumes it
            return 0


def _process_group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture
def celery_env(monkeypatch, pipeline_env: DevServer, postgres_url: str, tmp_path: Path) -> dict[str, str]:
    """The run's and the workers' environment: the celery executor on the test broker, the candle
    store on PostgreSQL (as a deployment with workers on several hosts has it)."""
    if error := _broker_connection_error():
        pytest.fail(f"the Celery broker at {BROKER.split('@')[-1]} is required for this test and did not answer: {error}")
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.setenv(BROKER_ENV, BROKER)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setenv("MASSIVE_DATABASE_URL", postgres_url)
    candle_job.cache_clear()
    env = {k: os.environ[k] for k in processes.PIPELINE_VARS if k in os.environ}
    # the workers import this module (the reconstructor below) and keep whatever else is on the path
    # (scripts/test-at-clock.sh's shifted clock)
    path = [str(processes.ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env |= {EXECUTOR_ENV: "celery", BROKER_ENV: BROKER, "PYTHONPATH": os.pathsep.join(path)}
    return env


@pytest.fixture
def workers(celery_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, processes.Proc]]:
    """Two workers, one task at a time each, as separate process groups, started but not awaited
    (`await_ready`), so the test can do other work while they load the code location; stopped
    together, and checked gone with no consumer of the queue left behind, however the test ends."""
    started: dict[str, processes.Proc] = {}
    try:
        for name in WORKERS:
            argv = [str(processes.BIN / "celery"), "-A", "massive_pipeline.candles.celery_worker", "worker",
                    "-n", f"{name}@%h", "--concurrency", "1", "--prefetch-multiplier", "1", "-Q", CELERY_QUEUE,
                    "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
            started[name] = processes.start(argv, env=processes.pipeline_env(**celery_env),
                                            log=tmp_path / f"{name}.log", name=name)
        yield started
    finally:
        for proc in started.values():  # warm shutdown of both at once: each finishes its task and leaves
            if proc.alive():
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in started.values():
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill9()
        for proc in started.values():
            assert _process_group_gone(proc.pid), f"{proc.name} left processes behind"
        processes.wait_until(lambda: _queue_consumers() == 0, timeout=30,
                             what=f"no consumer left on queue {CELERY_QUEUE!r}")


def await_ready(workers: dict[str, processes.Proc]) -> None:
    for name, proc in workers.items():
        processes.wait_until(lambda p=proc, n=name: f"{n}@" in (out := p.output(100_000)) and " ready." in out,
                             timeout=90, what=f"celery {name} ready", on_timeout=proc.output)


def _keys() -> list[AssetKey]:
    return [candle_key(s, tf) for s in SYMBOLS for tf in TIMEFRAMES]


def _bars(url: str) -> dict[tuple[str, str], pd.DataFrame]:
    store = CandleStore(url)
    try:
        return {(s, tf.value): store.read(s, tf).drop(columns=["ingested_at"]) for s in SYMBOLS for tf in TIMEFRAMES}
    finally:
        store.dispose()


def test_candle_job_runs_on_two_celery_workers_and_stores_what_an_in_process_run_stores(
    monkeypatch, celery_env: dict[str, str], workers: dict[str, processes.Proc], pipeline_env: DevServer,
    tmp_path: Path,
) -> None:
    (spec,) = [s for s in load_catalog() if s.symbol == SYMBOLS[0]]
    job_name = job_name_for(spec, Timeframe.M1)
    tags = {ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST}

    with DagsterInstance.get() as instance:
        # while the workers start: the same job, selection and range in this process, on a second
        # store and a limiter of its own
        in_process_url = f"sqlite:///{tmp_path}/in_process.sqlite"
        with monkeypatch.context() as local_env:
            local_env.setenv("MASSIVE_DATABASE_URL", in_process_url)
            local_env.setenv("MASSIVE_RATE_LIMIT_URL", f"sqlite:///{tmp_path}/in_process_limiter.sqlite")
            local_env.delenv(EXECUTOR_ENV)
            local = build_definitions().resolve_job_def(job_name).execute_in_process(
                instance=instance, tags=tags, asset_selection=_keys())
            assert local.success
        pipeline_env.clear_requests()

        await_ready(workers)
        recon = build_reconstructable_job(__name__, candle_job.__name__, reconstructable_args=(job_name,))
        assert candle_job(job_name).executor_def.name == "celery_lanes"
        with execute_job(recon, instance, tags=tags, asset_selection=_keys()) as result:
            assert result.success, [e.message for e in result.all_events if e.is_failure]
            run_id = result.run_id
        records = instance.all_logs(run_id)

    # which worker executed each step: dagster-celery's engine event from inside the task
    worker_of: dict[str, str] = {}
    for record in records:
        event = record.dagster_event
        if event and event.event_type is DagsterEventType.ENGINE_EVENT and event.step_key:
            entry = event.engine_event_data.metadata.get(WORKER_EVENT_KEY)
            if entry is not None:
                worker_of[event.step_key] = entry.value
    succeeded = {r.dagster_event.step_key for r in records
                 if r.dagster_event and r.dagster_event.event_type is DagsterEventType.STEP_SUCCESS}
    assert len(succeeded) == len(SYMBOLS) * len(TIMEFRAMES)
    assert set(worker_of) == succeeded
    assert {node.split("@")[0] for node in worker_of.values()} == set(WORKERS), f"both workers take steps: {worker_of}"

    # and each step's process is a child of that very worker's process, never this one
    worker_pids = {proc.pid: name for name, proc in workers.items()}
    for record in records:
        event = record.dagster_event
        if event and event.event_type is DagsterEventType.STEP_START:
            assert event.pid != os.getpid()
            parent = worker_pids.get(_parent_pid(event.pid))
            assert parent is not None and worker_of[event.step_key].startswith(f"{parent}@"), (
                event.step_key, event.pid, worker_of[event.step_key])

    # the workers took their tokens from the limiter the environment names, one per API request
    limiter = SharedRateLimiter(100_000, backend_url=celery_env["MASSIVE_RATE_LIMIT_URL"])
    assert limiter.stats().acquired == pipeline_env.request_count() > 0

    # and wrote the store the environment names: the bars the in-process run wrote to its own
    celery_bars, in_process_bars = _bars(celery_env["MASSIVE_DATABASE_URL"]), _bars(in_process_url)
    for series, frame in celery_bars.items():
        assert len(frame) > 0, series
        pd.testing.assert_frame_equal(frame, in_process_bars[series], obj=f"{series} bars")
