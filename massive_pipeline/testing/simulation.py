"""Unattended operation on an accelerated clock, against the bundled server.

The code location's own schedules and secondary-queue sensor are evaluated exactly as the daemon
evaluates them (`evaluate_tick` with the tick time, the cursor, the resources); each run they
request is created and submitted to the instance as the sensor daemon submits it. The instance is
configured like the deployed one (`sim_instance`: `deploy/dagster.yaml`'s QueuedRunCoordinator
limits and pools, read at run time, on SQLite storage), so the runs wait in the real run queue:
Dagster's own run queue daemon iteration dequeues them within max_concurrent_runs and the tag
limits, and the instance's run launcher starts each in its own process of a gRPC code server
(`sim_location`), where the candle steps claim their `massive_api` pool slots. Two asset backfills
(two years of a critical symbol's and of a non-critical symbol's base bars), submitted as
`massive-pipeline backfill --submit` submits them and planned by the backfill daemon's iteration,
compete for those slots and for the API budget the whole time. The bundled server runs in a
process of its own, like the real API. Time runs `speedup` times faster than the wall clock for everything
that reads a clock: the schedules' tick times, the sensor's "now", the server's clock (no bar
exists after it) and - through the window length - both the shared limiter and the server's own
rate limit. So "5 requests a minute" means 5 per `60 / speedup` real seconds on both sides, and
any 429 would be real. Only the limiter's safety margin stays in real time (see
`SimulatedMassiveResource`).

Measured: whether every critical symbol's refresh requested at a 5-minute tick finished before the
next one (and the worst lag), the server's 429s, and how far the backfills got (API pages answered
to them, bars they wrote). Used by `benchmarks/bench_simulated_hour.py` (an hour) and the test
suite (a shorter stretch).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    in_process_executor,
)

from massive_pipeline.candles.backfill_submission import SubmittedBackfill, submit_candle_backfill
from massive_pipeline.core.catalog import Catalog
from massive_pipeline.dagster_compat import (
    BACKFILL_ID_TAG,
    JobSubsetSelector,
    ModuleTarget,
    QueuedRunCoordinatorDaemon,
    create_test_daemon_workspace_context,
    cron_string_iterator,
    execute_backfill_iteration,
)
from massive_pipeline.operations.freshness import FRESHNESS_LIMITS
from massive_pipeline.operations.queue import UP_TO_DATE_STATES
from massive_pipeline.operations.queue_report import read_queue_report
from massive_pipeline.operations.runs import requested_partitions
from massive_pipeline.operations.sensors import SECONDARY_QUEUE_SENSOR
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG, SYMBOL_TAG, OperationsSettings
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer, RequestRecord
from massive_pipeline.testing.devserver.accounting import RequestLog
from massive_pipeline.testing.sim_instance import (
    DEPLOY_INSTANCE_YAML,
    queue_limits,
    write_simulation_instance_yaml,
)
from massive_pipeline.testing.sim_location import PARAMS_ENV, SimulationParams, code_location, sim_resources

LOCATION_NAME = "massive_simulation"
# Dagster's daemon defaults, in real seconds of a deployment (the simulation divides them by the speedup):
# the backfill daemon's loop interval, and the run queue's when the instance does not set one.
BACKFILL_DAEMON_INTERVAL_SECONDS = 30.0
DEFAULT_DEQUEUE_INTERVAL_SECONDS = 5.0
# The backfills submitted at the start carry the purpose `massive-pipeline backfill --submit` gives its own.
BACKFILL_TAGS = {PURPOSE_TAG: "cli_backfill"}


class AcceleratedClock:
    """Simulated UTC time: `start` plus `speedup` times the real time elapsed since creation."""

    def __init__(self, start: pd.Timestamp, speedup: float) -> None:
        self.start = pd.Timestamp(start).tz_convert("UTC")
        self.speedup = speedup
        self._t0 = time.monotonic()

    def restart(self) -> None:
        """Simulated time starts (again) at `start` now."""
        self._t0 = time.monotonic()

    def now(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(seconds=(time.monotonic() - self._t0) * self.speedup)

    def wait_until(self, ts: pd.Timestamp) -> None:
        """Pace the simulation: block until simulated time reaches `ts`."""
        real = (ts - self.start).total_seconds() / self.speedup - (time.monotonic() - self._t0)
        if real > 0:
            time.sleep(real)


@dataclass(frozen=True)
class SimulationConfig:
    start: pd.Timestamp
    minutes: int = 60
    speedup: float = 10.0
    rate_limit: int = 5  # requests per simulated minute, for the limiter and for the server
    tick_seconds: int = 30  # simulated seconds between sensor ticks
    critical_reserve: float = 0.2
    # Two backfills submitted at the start and running throughout: (symbol, days of history up to
    # the day before `start`). Their base timeframe only: what a history download fetches.
    backfills: tuple[tuple[str, int], ...] = (("EURUSD", 730), ("GBPUSD", 730))
    # After the last tick, how long (simulated seconds) the critical refreshes it asked for may take to finish.
    drain_seconds: int = 300
    instance_yaml: Path = DEPLOY_INSTANCE_YAML

    @property
    def window_seconds(self) -> float:
        """A simulated minute in real seconds."""
        return 60.0 / self.speedup


@dataclass
class RunOutcome:
    purpose: str
    symbol: str
    job_name: str
    partitions: tuple[str, str]
    requested_at: pd.Timestamp
    finished_at: pd.Timestamp | None = None
    success: bool = False
    run_id: str = ""
    error: str = ""
    # where a late refresh's minutes went (simulated time): the tick's evaluation until the run
    # was submitted, the run queue until its process started, then the run itself
    submitted_at: pd.Timestamp | None = None
    started_at: pd.Timestamp | None = None

    def timeline(self) -> str:
        """`submitted +a, started +b, done +c min` after the tick, for the report."""
        def after(ts: pd.Timestamp | None) -> str:
            return "-" if ts is None else f"+{(ts - self.requested_at).total_seconds() / 60:.2f}"
        return (f"{self.symbol} {self.requested_at:%H:%M}: submitted {after(self.submitted_at)}, "
                f"started {after(self.started_at)}, done {after(self.finished_at)} min")


@dataclass
class CriticalCheck:
    symbol: str
    ticks: int = 0
    on_time: int = 0
    closed: int = 0
    problems: list[str] = field(default_factory=list)
    worst_lag: pd.Timedelta | None = None  # tick to the refresh's end, over the ticks it was refreshed at

    @property
    def ok(self) -> bool:
        return not self.problems and self.on_time + self.closed == self.ticks


@dataclass
class SecondaryCheck:
    symbol: str
    tier: str
    limit: pd.Timedelta
    refreshes: int = 0
    samples: int = 0
    max_lag: pd.Timedelta | None = None
    behind_reported: int = 0
    behind_unreported: int = 0
    last_reason: str = ""

    @property
    def verdict(self) -> str:
        if self.behind_unreported:
            return f"BEHIND WITHOUT A REASON in {self.behind_unreported} sample(s)"
        if self.behind_reported:
            return f"behind in {self.behind_reported}/{self.samples} samples, reported: {self.last_reason}"
        if self.refreshes == 0 and self.samples:
            return f"not refreshed: {self.last_reason}"
        return "within its freshness limit"

    @property
    def ok(self) -> bool:
        return self.behind_unreported == 0


@dataclass
class BackfillProgress:
    """How far one of the backfills got during the stretch (it is not expected to finish)."""

    symbol: str
    backfill_id: str
    first_day: str
    last_day: str
    runs: dict[str, int] = field(default_factory=dict)  # run status -> runs
    pages: int = 0  # aggregate pages the server answered to the backfill's ranged requests
    bars_written: int = 0  # bars stored in the backfill's range (the ticks' refreshes never reach it)

    @property
    def progressed(self) -> bool:
        return self.pages > 0 or self.bars_written > 0


@dataclass
class SimulationReport:
    config: SimulationConfig
    per_minute: list[tuple[int, int, int]]  # (simulated minute, admitted requests, 429 answers)
    rejected_429: int
    max_in_window: int
    critical: list[CriticalCheck]
    secondary: list[SecondaryCheck]
    runs: list[RunOutcome]
    real_seconds: float
    tick_seconds: list[float] = field(default_factory=list)  # real time each tick's evaluation took
    backfills: list[BackfillProgress] = field(default_factory=list)
    limits: str = ""  # the run queue and pool limits the runs ran under

    @property
    def critical_worst_lag(self) -> pd.Timedelta | None:
        lags = [c.worst_lag for c in self.critical if c.worst_lag is not None]
        return max(lags) if lags else None

    @property
    def ok(self) -> bool:
        return (self.rejected_429 == 0 and all(c.ok for c in self.critical) and all(s.ok for s in self.secondary)
                and self.max_in_window <= self.config.rate_limit and all(b.progressed for b in self.backfills))

    def format(self) -> str:
        cfg = self.config
        lines = [
            f"simulated {cfg.minutes} min from {cfg.start:%Y-%m-%d %H:%M} UTC at {cfg.speedup:g}x "
            f"({self.real_seconds:.0f} s real); limiter and server: {cfg.rate_limit} requests per simulated minute",
            f"instance from {cfg.instance_yaml.name}: {self.limits}",
            "requests per simulated minute (admitted / 429):",
        ]
        row = []
        for minute, admitted, throttled in self.per_minute:
            row.append(f"{minute:>3}:{admitted}" + (f"/{throttled}!" if throttled else ""))
            if len(row) == 10:
                lines.append("  " + "  ".join(row))
                row = []
        if row:
            lines.append("  " + "  ".join(row))
        total = sum(a for _, a, _ in self.per_minute)
        lines.append(f"total {total} requests, most in any simulated minute {self.max_in_window} "
                     f"(limit {cfg.rate_limit}), 429 answers: {self.rejected_429}")
        lines.append("critical symbols (a successful refresh requested at every 5-minute tick, done before the next):")
        for c in self.critical:
            state = "ok" if c.ok else "FAILED"
            lag = "-" if c.worst_lag is None else f"{c.worst_lag.total_seconds() / 60:.2f} min"
            lines.append(f"  {c.symbol:<8} {state}: {c.on_time}/{c.ticks} ticks on time, {c.closed} market closed, "
                         f"worst lag tick -> refresh done {lag}" + (f"; {'; '.join(c.problems[:3])}" if c.problems else ""))
        worst = self.critical_worst_lag
        lines.append("worst critical lag: " + ("-" if worst is None else f"{worst.total_seconds() / 60:.2f} simulated min"))
        lines.extend(f"  {run.timeline()}" for run in self.runs if run.purpose == "priority_refresh")
        lines.append("backfills (submitted at the start, running throughout):")
        for b in self.backfills:
            runs = ", ".join(f"{n} {status.lower()}" for status, n in sorted(b.runs.items())) or "no run"
            lines.append(f"  {b.symbol:<8} {b.first_day}..{b.last_day}: runs {runs}; {b.pages} API pages answered, "
                         f"{b.bars_written} bars written" + ("" if b.progressed else " - NO PROGRESS"))
        lines.append("secondary symbols:")
        for s in self.secondary:
            lag = "-" if s.max_lag is None else f"{s.max_lag.total_seconds() / 60:.1f} min"
            lines.append(f"  {s.symbol:<8} {s.tier:<6} limit {s.limit.total_seconds() / 60:.0f} min, "
                         f"{s.refreshes} refreshes, worst lag {lag}: {s.verdict}")
        failed = sum(1 for r in self.runs if not r.success)
        lines.append(f"runs requested by the ticks: {len(self.runs)}, {failed} failed or unfinished")
        for run in [r for r in self.runs if not r.success][:5]:
            lines.append(f"  failed: {run.symbol} {run.purpose} run {run.run_id[:8]}: {run.error or 'no error recorded'}")
        if self.tick_seconds:
            lines.append(f"tick evaluation: mean {sum(self.tick_seconds) / len(self.tick_seconds):.2f} s, "
                         f"max {max(self.tick_seconds):.2f} s real (a tick is {cfg.tick_seconds / cfg.speedup:g} s)")
        return "\n".join(lines)


def _serve(rate_limit: int, window_seconds: float, start: pd.Timestamp, speedup: float, conn) -> None:
    """The bundled server in its own process, as the real API is: its clock follows simulated time.

    In the simulation's own process, its handler threads would share one interpreter lock with the
    tick evaluation, and a request's arrival would be stamped late by however long the tick held it.
    """
    with DevServer(rate_limit=rate_limit, rate_window_seconds=window_seconds) as server:
        server.now = start
        conn.send(server.url)
        t0: float | None = None
        while True:
            if conn.poll(0.02):
                message = conn.recv()
                if message[0] == "start":
                    t0 = message[1]
                elif message[0] == "stats":
                    conn.send((server.request_count(None), server.rejected_429_count()))
                elif message[0] == "stop":
                    conn.send(server.requests)
                    return
            if t0 is not None:
                server.now = start + pd.Timedelta(seconds=(time.time() - t0) * speedup)


class _ServerProcess:
    def __init__(self, config: SimulationConfig) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="simulated-api",
                                 args=(config.rate_limit, config.window_seconds, config.start, config.speedup, child),
                                 daemon=True)
        self._proc.start()
        self.url: str = self._conn.recv()
        self._lock = threading.Lock()

    def start_clock(self, t0_wall: float) -> None:
        with self._lock:
            self._conn.send(("start", t0_wall))

    def counts(self) -> tuple[int, int]:
        """(requests, 429 answers) so far."""
        with self._lock:
            self._conn.send(("stats",))
            return self._conn.recv()

    def stop(self) -> list[RequestRecord]:
        with self._lock:
            self._conn.send(("stop",))
            records = self._conn.recv()
        self._proc.join(timeout=30)
        return records


def _fire_times(cron: str, start: pd.Timestamp, end: pd.Timestamp) -> set[pd.Timestamp]:
    out: set[pd.Timestamp] = set()
    for when in cron_string_iterator(start.timestamp(), cron, "UTC"):
        ts = pd.Timestamp(when).tz_convert("UTC")
        if ts >= end:
            break
        out.add(ts)
    return out


def run_simulation(
    catalog: Catalog,
    config: SimulationConfig,
    *,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationReport:
    """Operate `catalog` for `config.minutes` simulated minutes from `config.start`; measure it."""
    # Memory-backed storage when there is some: the instance's SQLite event log syncs every event to
    # disk, which would make runs lag the accelerated clock; how long a run takes is not what is measured.
    shm = Path("/dev/shm")
    # ignore_cleanup_errors: a run process the launcher could not stop may still hold files in it
    with tempfile.TemporaryDirectory(prefix="massive-sim-", dir=shm if shm.is_dir() else None,
                                     ignore_cleanup_errors=True) as tmp:
        root = Path(workdir or tmp)
        home = root / "dagster_home"
        instance_config = write_simulation_instance_yaml(home, config.instance_yaml)
        server = _ServerProcess(config)
        try:
            with DagsterInstance.local_temp(str(home)) as instance:
                report = _simulate(catalog, config, server, instance, root, progress, instance_config)
                report.limits = queue_limits(instance_config)
                return report
        finally:
            if server._proc.is_alive():
                server._proc.kill()


@contextlib.contextmanager
def _code_server(params: SimulationParams, root: Path, instance: DagsterInstance) -> Iterator[object]:
    """A workspace on a gRPC code server loading `sim_location`, as the daemon loads a code location.

    The server and the run processes it starts inherit this process's environment at the moment it
    starts: that is how they learn the simulation's parameters. Their own output goes to runs.log.
    """
    previous = os.environ.get(PARAMS_ENV)
    os.environ[PARAMS_ENV] = str(params.write(root / "simulation.params"))
    log = open(root / "runs.log", "a")  # noqa: SIM115 - the code server's stderr for its lifetime
    saved_stderr = os.dup(sys.stderr.fileno())
    try:
        sys.stderr.flush()
        os.dup2(log.fileno(), sys.stderr.fileno())  # inherited by the code server and its run processes
        target = ModuleTarget(module_name="massive_pipeline.testing.sim_location", attribute="defs",
                              working_directory=None, location_name=LOCATION_NAME)
        with create_test_daemon_workspace_context(target, instance) as workspace:
            # the server starts at the first request: load the location now, before the clock starts
            workspace.create_request_context().get_code_location(LOCATION_NAME)
            os.dup2(saved_stderr, sys.stderr.fileno())
            yield workspace
    finally:
        os.dup2(saved_stderr, sys.stderr.fileno())
        os.close(saved_stderr)
        log.close()
        if previous is None:
            os.environ.pop(PARAMS_ENV, None)
        else:
            os.environ[PARAMS_ENV] = previous


class _Daemon:
    """What `dagster-daemon run` does for runs and backfills, in a thread of the simulation.

    The sensor daemon's submission (a run created from the code server's job subset and execution
    plan, then `instance.submit_run`, which the QueuedRunCoordinator turns into a queued run), and,
    every `interval` real seconds, one iteration of the run queue daemon (dequeue within the
    instance's run limits, launch through the instance's run launcher), and every
    `backfill_interval` one of the backfill daemon. Both intervals are the deployed daemon's,
    divided by the speedup, so that a queued run waits as long in simulated time as it would.
    """

    def __init__(self, instance: DagsterInstance, workspace, repository_name: str, interval: float,
                 backfill_interval: float, logger: logging.Logger) -> None:
        self.instance, self.workspace, self.repository_name = instance, workspace, repository_name
        self.interval, self.backfill_interval, self.logger = interval, backfill_interval, logger
        self.queue = QueuedRunCoordinatorDaemon(interval_seconds=max(1, round(interval)))
        # its per-iteration lines would flood the console; the simulation reports what it launched
        logging.getLogger("dagster.daemon").setLevel(logging.WARNING)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._next_backfill = 0.0
        self._thread = threading.Thread(target=self._loop, name="simulated-daemon", daemon=True)

    def submit(self, request: RunRequest, job_name: str) -> str:
        """Create and submit the run `request` asks for, as the sensor daemon does; its id."""
        context = self.workspace.create_request_context()
        location = context.get_code_location(LOCATION_NAME)
        remote_job = location.get_job(JobSubsetSelector(
            location_name=LOCATION_NAME, repository_name=self.repository_name, job_name=job_name,
            op_selection=None, asset_selection=request.asset_selection, asset_check_selection=request.asset_check_keys,
        ))
        plan = location.get_execution_plan(remote_job, request.run_config, step_keys_to_execute=None,
                                           known_state=None, instance=self.instance)
        tags = {**(remote_job.run_tags or {}), **request.tags}
        if request.partition_key is not None:
            tags.setdefault("dagster/partition", request.partition_key)
        run = self.instance.create_run(
            job_name=job_name, run_id=None, run_config=request.run_config, resolved_op_selection=None,
            step_keys_to_execute=None, status=DagsterRunStatus.NOT_STARTED, op_selection=None, root_run_id=None,
            parent_run_id=None, tags=tags, job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(request.asset_selection) if request.asset_selection is not None else None,
            asset_check_selection=(frozenset(request.asset_check_keys)
                                   if request.asset_check_keys is not None else None),
            asset_graph=location.get_repository(self.repository_name).asset_graph,
        )
        self.instance.submit_run(run.run_id, context)
        return run.run_id

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if not self._thread.is_alive():
            self.queue.__exit__(None, None, None)  # its launch threads, when the instance dequeues with threads

    def iterate(self) -> None:
        """A backfill daemon iteration when one is due, then one run queue daemon iteration."""
        if time.monotonic() >= self._next_backfill:
            self._next_backfill = time.monotonic() + self.backfill_interval
            for error in execute_backfill_iteration(self.workspace, self.logger):
                if error is not None:
                    self.errors.append(error.to_string()[:500])
        for error in self.queue.run_iteration(self.workspace):
            if error is not None:
                self.errors.append(str(error)[:500])

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.iterate()
            except Exception as exc:  # noqa: BLE001 - the daemon logs an iteration's failure and goes on
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)  # the daemon's own interval between iterations


def _submit_backfills(catalog: Catalog, config: SimulationConfig, defs, instance: DagsterInstance) -> list[SubmittedBackfill]:
    """The history downloads a user starts with `massive-pipeline backfill --submit`, one per symbol."""
    last = (config.start - pd.Timedelta(days=1)).date()
    out = []
    for symbol, days in config.backfills:
        spec = catalog.get(symbol)
        first = max(spec.start, last - dt.timedelta(days=days - 1))
        out.append(submit_candle_backfill(defs, instance, [spec], [spec.base_timeframe], first, last,
                                          tags=BACKFILL_TAGS))
    return out


def _cancel_unfinished(instance: DagsterInstance, run_ids: list[str]) -> None:
    """End the stretch: queued runs are dropped, started ones terminated through their launcher."""
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            continue
        if run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
            instance.report_run_canceled(run, message="end of the simulated stretch")
        else:
            instance.run_launcher.terminate(run_id)


def _run_error(instance: DagsterInstance, run_id: str) -> str:
    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for record in instance.get_records_for_run(run_id, of_type=kind).records:
            entry = record.event_log_entry
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            error = getattr(data, "error", None)
            text = error.message if error is not None else entry.message
            return " ".join(str(text).split())[:300]
    return ""


def _dequeue_interval(instance_config: dict) -> float:
    """The run queue daemon's interval the instance configures (Dagster's default when it does not)."""
    coordinator = (instance_config.get("run_coordinator") or {}).get("config") or {}
    return float(coordinator.get("dequeue_interval_seconds", DEFAULT_DEQUEUE_INTERVAL_SECONDS))


def _simulate(catalog, config, server, instance, root, progress, instance_config) -> SimulationReport:
    clock = AcceleratedClock(config.start, config.speedup)
    resources = sim_resources(server.url, config.rate_limit, config.window_seconds, config.critical_reserve, root)
    # the sensor's interval enters the budget against the limiter's window, both in real seconds
    settings = OperationsSettings(
        clock=clock.now, secondary_interval_seconds=max(1, round(config.tick_seconds / config.speedup)),
    )
    # the code server's executor (sim_location), so the ticks' requests carry the run config its jobs take
    defs = code_location(catalog, settings, resources, executor=in_process_executor)
    repo = defs.get_repository_def()
    end = config.start + pd.Timedelta(minutes=config.minutes)
    schedules = [(s, _fire_times(s.cron_schedule, config.start, end)) for s in repo.schedule_defs]
    sensor = repo.get_sensor_def(SECONDARY_QUEUE_SENSOR) if repo.has_sensor_def(SECONDARY_QUEUE_SENSOR) else None
    store = CandleStore(f"sqlite:///{root / 'candles.sqlite'}")
    store.create_schema()
    params = SimulationParams(catalog, server.url, str(root), config.rate_limit, config.window_seconds,
                              config.critical_reserve)
    assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator", (
        f"{config.instance_yaml} configures no QueuedRunCoordinator: the simulation measures the run queue")

    outcomes: list[RunOutcome] = []
    console = sys.stdout

    def progress_to(text: str) -> None:
        with contextlib.redirect_stdout(console):
            progress(text)

    samples: dict[str, list[tuple[pd.Timestamp, float | None, str, str]]] = defaultdict(list)
    tick_seconds: list[float] = []
    cursor: str | None = None
    ticks = [config.start + pd.Timedelta(seconds=config.tick_seconds * k)
             for k in range(math.ceil(config.minutes * 60 / config.tick_seconds))]
    wall_t0 = time.time()  # reset when the clock starts
    logger = logging.getLogger("massive_pipeline.simulation.daemon")
    with contextlib.ExitStack() as stack:
        # the tick logs (queue tables, refresh plans) go to a file, as the daemon keeps them per tick
        tick_log = stack.enter_context(open(root / "ticks.log", "a"))  # noqa: SIM115
        handler = logging.StreamHandler(tick_log)
        logger.addHandler(handler)
        logger.propagate = False
        stack.callback(logger.removeHandler, handler)
        workspace = stack.enter_context(_code_server(params, root, instance))
        daemon = _Daemon(instance, workspace, repo.name, logger=logger,
                         interval=_dequeue_interval(instance_config) / config.speedup,
                         backfill_interval=BACKFILL_DAEMON_INTERVAL_SECONDS / config.speedup)
        try:
            backfills = _submit_backfills(catalog, config, defs, instance)
            # plan the backfills' runs and load the code location in the server before the clock starts
            daemon.iterate()
            clock.restart()
            wall_t0 = time.time()
            server.start_clock(wall_t0)
            daemon.start()
            stack.enter_context(contextlib.redirect_stdout(tick_log))
            stack.enter_context(contextlib.redirect_stderr(tick_log))

            def submit(request: RunRequest, job_name: str) -> None:
                try:
                    parts = requested_partitions(request)
                except KeyError:
                    parts = ("", "")
                outcome = RunOutcome(
                    purpose=request.tags.get(PURPOSE_TAG, ""), symbol=request.tags.get(SYMBOL_TAG, ""),
                    job_name=job_name, partitions=parts,
                    requested_at=pd.Timestamp(request.tags.get(REQUESTED_AT_TAG) or clock.now()),
                )
                try:
                    outcome.run_id = daemon.submit(request, job_name)
                    outcome.submitted_at = clock.now()
                except Exception as exc:  # noqa: BLE001 - a run the daemon cannot create is a failed request
                    outcome.error = f"not submitted: {type(exc).__name__}: {exc}"[:300]
                outcomes.append(outcome)

            for at in ticks:
                clock.wait_until(at)
                tick_started = time.monotonic()
                for schedule, fires in schedules:
                    if at not in fires:
                        continue
                    with build_schedule_context(instance=instance, scheduled_execution_time=at.to_pydatetime(),
                                                resources=resources, repository_def=repo) as context:
                        data = schedule.evaluate_tick(context)
                    for request in data.run_requests or []:
                        submit(request, request.job_name or schedule.job_name)
                if sensor is not None:
                    with build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                              repository_def=repo) as context:
                        data = sensor.evaluate_tick(context)
                    cursor = data.cursor
                    for request in data.run_requests or []:
                        submit(request, request.job_name or "")
                    report = read_queue_report(store)
                    for row in report.itertuples(index=False):
                        samples[row.symbol].append((at, row.lag_seconds, row.state, row.reason))
                tick_seconds.append(time.monotonic() - tick_started)
                if progress is not None and at.second == 0 and at.minute % 5 == 0:
                    statuses = Counter(r.status.value for r in instance.get_runs())
                    requests, throttled = server.counts()
                    progress_to(f"{at:%H:%M} simulated: {len(outcomes)} runs requested by the ticks; in the instance "
                                f"{dict(sorted(statuses.items()))}; {requests} API requests, {throttled} 429")
            # the last ticks' critical refreshes may finish (at most `drain_seconds` later; a refresh
            # done after the next 5-minute tick is late anyway); the rest is stopped, backfills included
            mine = [o.run_id for o in outcomes if o.run_id]
            critical = [o.run_id for o in outcomes if o.run_id and o.purpose == "priority_refresh"]
            drain_end = end + pd.Timedelta(seconds=config.drain_seconds)
            while clock.now() < drain_end and not all(_finished(instance, r) for r in critical):
                clock.wait_until(min(drain_end, clock.now() + pd.Timedelta(seconds=config.tick_seconds)))
            real_seconds = time.time() - wall_t0
            backfill_runs = [r.run_id for b in backfills
                             for r in instance.get_runs(_backfill_filter(b.backfill_id))]
            daemon.stop()
            # nothing is dequeued any more: stop what is left and let the code server wind down
            _cancel_unfinished(instance, mine + backfill_runs)
            # a terminated run process still writes its last events: let it, or it would write into a
            # removed directory (bounded: a run that ignores termination is left to the code server)
            stopping_until = clock.now() + pd.Timedelta(seconds=30 * config.speedup)
            while clock.now() < stopping_until and not all(_finished(instance, r) for r in mine + backfill_runs):
                clock.wait_until(clock.now() + pd.Timedelta(seconds=config.speedup / 4))
        finally:
            daemon.stop()
            records = server.stop()
        _collect(instance, outcomes, clock, wall_t0, config)
        progress_of = [_backfill_progress(instance, store, b, records) for b in backfills]
    store.dispose()
    report = _report(catalog, config, records, wall_t0, outcomes, samples, real_seconds)
    report.tick_seconds = tick_seconds
    report.backfills = progress_of
    return report


def _backfill_filter(backfill_id: str):
    from dagster import RunsFilter

    return RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})


def _finished(instance: DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _collect(instance: DagsterInstance, outcomes: list[RunOutcome], clock: AcceleratedClock, wall_t0: float,
             config: SimulationConfig) -> None:
    """Each tick-requested run's result from the instance: status and end time (in simulated time)."""
    for outcome in outcomes:
        if not outcome.run_id:
            continue
        record = instance.get_run_record_by_id(outcome.run_id)
        if record is None:
            outcome.error = "run vanished"
            continue
        outcome.success = record.dagster_run.status == DagsterRunStatus.SUCCESS
        if record.start_time is not None:
            outcome.started_at = config.start + pd.Timedelta(seconds=(record.start_time - wall_t0) * config.speedup)
        if record.dagster_run.is_finished and record.end_time is not None and outcome.success:
            outcome.finished_at = config.start + pd.Timedelta(seconds=(record.end_time - wall_t0) * config.speedup)
        if not outcome.success:
            status = record.dagster_run.status.value
            outcome.error = (f"{status}: " + _run_error(instance, outcome.run_id)).strip(": ")


def _backfill_progress(instance: DagsterInstance, store: CandleStore, backfill: SubmittedBackfill,
                       records: list[RequestRecord]) -> BackfillProgress:
    (rng,) = [r for r in backfill.ranges if r.timeframe is r.spec.base_timeframe]
    runs = Counter(r.status.value for r in instance.get_runs(_backfill_filter(backfill.backfill_id)))
    # the backfill's ranged request starts at its first day; no refresh asks for a window that old
    first_ms = str(int(pd.Timestamp(rng.first, tz="UTC").timestamp() * 1000))
    ticker = rng.spec.ticker
    pages = sum(1 for rec in records if rec.kind == "aggs" and rec.status == 200 and ticker in rec.path
                and (f"/{rng.first}/" in rec.path or f"/{first_ms}/" in rec.path or rec.page > 1))
    bars = store.count(rng.spec.symbol, rng.timeframe, pd.Timestamp(rng.first, tz="UTC"),
                       pd.Timestamp(rng.last, tz="UTC") - pd.Timedelta(days=2))
    return BackfillProgress(rng.spec.symbol, backfill.backfill_id, rng.first, rng.last, dict(runs), pages, bars)


def _report(catalog, config, records, wall_t0, outcomes, samples, real_seconds) -> SimulationReport:
    log = RequestLog()
    per_minute: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        log.append(record)
        minute = int(((record.time - wall_t0) * config.speedup) // 60)
        per_minute[minute][1 if record.status == 429 else 0] += 1
    minutes = [(m, per_minute[m][0], per_minute[m][1]) for m in range(max(config.minutes, max(per_minute, default=-1) + 1))]

    end = config.start + pd.Timedelta(minutes=config.minutes)
    priority_ticks = sorted(_fire_times("*/5 * * * *", config.start, end))
    critical: list[CriticalCheck] = []
    for spec in catalog.critical():
        check = CriticalCheck(spec.symbol)
        runs = {o.requested_at: o for o in outcomes
                if o.purpose == "priority_refresh" and o.symbol == spec.symbol and "daily" in o.job_name}
        for at in priority_ticks:
            check.ticks += 1
            if not spec.market_calendar.is_open_at(at):
                check.closed += 1
                continue
            run = runs.get(at)
            if run is None:
                check.problems.append(f"{at:%H:%M} no run requested")
            elif not run.success:
                check.problems.append(f"{at:%H:%M} run {run.run_id[:8]} failed {run.error}".rstrip())
            elif run.finished_at is None:
                check.problems.append(f"{at:%H:%M} refresh not finished by the end of the stretch")
            else:
                lag = run.finished_at - at
                check.worst_lag = lag if check.worst_lag is None else max(check.worst_lag, lag)
                if lag > pd.Timedelta(minutes=5):
                    check.problems.append(f"{at:%H:%M} refresh finished {lag.total_seconds() / 60:.1f} min later, "
                                          "after the next tick")
                else:
                    check.on_time += 1
        critical.append(check)

    secondary: list[SecondaryCheck] = []
    for spec in catalog:
        if spec.is_critical:
            continue
        limit = FRESHNESS_LIMITS[spec.base_timeframe]
        check = SecondaryCheck(spec.symbol, spec.priority.value, limit)
        done = sorted(o.finished_at for o in outcomes if o.symbol == spec.symbol and o.success
                      and o.purpose == "secondary_refresh" and o.finished_at is not None)
        check.refreshes = len(done)
        warm = done[0] if done else None
        for at, lag, state, reason in samples.get(spec.symbol, []):
            explained = state not in UP_TO_DATE_STATES
            if warm is not None and at < warm:
                continue  # the cold start: nothing stored yet, the first refresh is on its way
            check.samples += 1
            lag_td = None if lag is None or pd.isna(lag) else pd.Timedelta(seconds=lag)
            if lag_td is not None and (check.max_lag is None or lag_td > check.max_lag):
                check.max_lag = lag_td
            if lag_td is None or lag_td > limit:
                if explained and reason:
                    check.behind_reported += 1
                    check.last_reason = f"{state}: {reason}"
                else:
                    check.behind_unreported += 1
                    check.last_reason = f"{state}: {reason}"
        secondary.append(check)

    return SimulationReport(
        config=config, per_minute=minutes, rejected_429=log.rejected_429(),
        max_in_window=log.max_in_window(config.window_seconds), critical=critical,
        secondary=secondary, runs=outcomes, real_seconds=real_seconds,
    )

