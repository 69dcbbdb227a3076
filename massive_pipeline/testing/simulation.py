"""Unattended operation on an accelerated clock, against the bundled server.

The code location's own schedules and secondary-queue sensor are evaluated exactly as the daemon
evaluates them (`evaluate_tick` with the tick time, the cursor, the resources); each run they
request is created in the instance at once, as the daemon creates it, and executed by a pool of
worker processes, concurrently, as a run launcher would. The bundled server runs in a process of
its own, like the real API. Time runs `speedup` times faster than the wall clock for everything
that reads a clock: the schedules' tick times, the sensor's "now", the server's clock (no bar
exists after it) and - through the window length - both the shared limiter and the server's own
rate limit. So "5 requests a minute" means 5 per `60 / speedup` real seconds on both sides, and
any 429 would be real. Only the limiter's safety margin stays in real time (see
`SimulatedMassiveResource`).

Used by `benchmarks/bench_simulated_hour.py` (an hour) and the test suite (a shorter stretch).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
)

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.dagster_compat import InstanceRef, cron_string_iterator, make_new_run_id
from massive_pipeline.massive.ratelimit import SharedRateLimiter, reserve_for
from massive_pipeline.operations.freshness import FRESHNESS_LIMITS
from massive_pipeline.operations.publisher import RedisPublisherResource
from massive_pipeline.operations.queue import UP_TO_DATE_STATES
from massive_pipeline.operations.queue_report import read_queue_report
from massive_pipeline.operations.runs import requested_partitions
from massive_pipeline.operations.sensors import SECONDARY_QUEUE_SENSOR
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG, SYMBOL_TAG, OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer, RequestRecord
from massive_pipeline.testing.devserver.accounting import RequestLog

SIM_API_KEY = "simulation-key"


def code_location(catalog: Catalog, settings: OperationsSettings, resources: Mapping[str, object]) -> Definitions:
    """The code location itself (`build_definitions`), with the simulation's settings and resources."""
    from massive_pipeline.definitions import build_definitions  # the root imports this package

    return build_definitions(catalog, resources=resources, settings=settings)


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
    workers: int = 6

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


@dataclass
class CriticalCheck:
    symbol: str
    ticks: int = 0
    on_time: int = 0
    closed: int = 0
    problems: list[str] = field(default_factory=list)

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

    @property
    def ok(self) -> bool:
        return (self.rejected_429 == 0 and all(c.ok for c in self.critical) and all(s.ok for s in self.secondary)
                and self.max_in_window <= self.config.rate_limit)

    def format(self) -> str:
        cfg = self.config
        lines = [
            f"simulated {cfg.minutes} min from {cfg.start:%Y-%m-%d %H:%M} UTC at {cfg.speedup:g}x "
            f"({self.real_seconds:.0f} s real); limiter and server: {cfg.rate_limit} requests per simulated minute",
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
            lines.append(f"  {c.symbol:<8} {state}: {c.on_time}/{c.ticks} ticks on time, {c.closed} market closed"
                         + (f"; {'; '.join(c.problems[:3])}" if c.problems else ""))
        lines.append("secondary symbols:")
        for s in self.secondary:
            lag = "-" if s.max_lag is None else f"{s.max_lag.total_seconds() / 60:.1f} min"
            lines.append(f"  {s.symbol:<8} {s.tier:<6} limit {s.limit.total_seconds() / 60:.0f} min, "
                         f"{s.refreshes} refreshes, worst lag {lag}: {s.verdict}")
        failed = sum(1 for r in self.runs if not r.success)
        lines.append(f"runs: {len(self.runs)} executed, {failed} failed")
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
    with tempfile.TemporaryDirectory(prefix="massive-sim-", dir=shm if shm.is_dir() else None) as tmp:
        root = Path(workdir or tmp)
        (root / "dagster_home").mkdir(parents=True, exist_ok=True)
        (root / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        server = _ServerProcess(config)
        try:
            with DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
                return _simulate(catalog, config, server, instance, root, progress)
        finally:
            if server._proc.is_alive():
                server._proc.kill()


# -- run workers: one process per concurrent run, as Dagster's run launcher starts them --------------

_WORKER: dict[str, object] = {}


class SimulatedMassiveResource(MassiveResource):
    """`MassiveResource` whose limiter keeps the safety margin a real 60-second window has.

    The margin absorbs the delay between taking a token and the request reaching the server. That
    delay is real time and does not shrink with the simulated window, so the margin must not
    either: 1 % of a 60 s window is 600 ms; 1 % of a 12 s simulated one would be 120 ms.
    """

    limiter_margin_ms: int = 600

    def build_limiter(self) -> SharedRateLimiter:
        return SharedRateLimiter(
            self.rate_limit_per_minute, self.rate_window_seconds,
            reserve=reserve_for(self.rate_limit_per_minute, self.critical_reserve),
            backend_url=self.limiter_url, margin_ms=self.limiter_margin_ms,
        )


def _sim_resources(server_url: str, config: SimulationConfig, root: Path) -> dict[str, object]:
    return {
        "massive": SimulatedMassiveResource(
            api_key=SIM_API_KEY, base_url=server_url, rate_limit_per_minute=config.rate_limit,
            rate_window_seconds=config.window_seconds, critical_reserve=config.critical_reserve,
            limiter_url=f"sqlite:///{root / 'limiter.sqlite'}",
        ),
        "candle_store": CandleStoreResource(database_url=f"sqlite:///{root / 'candles.sqlite'}"),
        "redis_publisher": RedisPublisherResource(url=None),
    }


def _worker_init(catalog: Catalog, server_url: str, config: SimulationConfig, root: str, ref: InstanceRef) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    log = open(Path(root) / "runs.log", "a")  # noqa: SIM115 - the worker's stderr for its lifetime
    os.dup2(log.fileno(), sys.stderr.fileno())
    settings = OperationsSettings(running_by_default=False)
    defs = code_location(catalog, settings, _sim_resources(server_url, config, Path(root)))
    _WORKER["repo"] = defs.get_repository_def()
    _WORKER["instance"] = DagsterInstance.from_ref(ref)


def _worker_ready(pause: float) -> int:
    time.sleep(pause)  # hold this worker so that the next warm-up task needs a new one
    return os.getpid()


def _worker_run(run_id: str, job_name: str, partition_key: str | None, keys: list[AssetKey] | None,
                tags: dict[str, str], run_config: dict) -> tuple[bool, str, str]:
    job = _WORKER["repo"].get_job(job_name)  # type: ignore[attr-defined]
    instance: DagsterInstance = _WORKER["instance"]  # type: ignore[assignment]
    try:
        # the placeholder the tick created stands for the queued run; the launched run takes its id
        instance.delete_run(run_id)
        result = job.execute_in_process(
            instance=instance, partition_key=partition_key, asset_selection=keys, tags=tags,
            run_config=run_config or None, raise_on_error=False, run_id=run_id,
        )
    except Exception as exc:  # noqa: BLE001 - a run that cannot even start is a failed run here
        return False, "", f"{type(exc).__name__}: {exc}"
    if result.success:
        return True, result.run_id, ""
    failures = result.get_step_failure_events()
    error = failures[0].step_failure_data.error if failures else None
    detail = " ".join(error.message.split())[:300] if error is not None else "the run failed outside its steps"
    return False, result.run_id, detail


def _simulate(catalog, config, server, instance, root, progress) -> SimulationReport:
    clock = AcceleratedClock(config.start, config.speedup)
    resources = _sim_resources(server.url, config, root)
    # the sensor's interval enters the budget against the limiter's window, both in real seconds
    settings = OperationsSettings(
        clock=clock.now, secondary_interval_seconds=max(1, round(config.tick_seconds / config.speedup)),
    )
    defs = code_location(catalog, settings, resources)
    repo = defs.get_repository_def()
    end = config.start + pd.Timedelta(minutes=config.minutes)
    schedules = [(s, _fire_times(s.cron_schedule, config.start, end)) for s in repo.schedule_defs]
    sensor = repo.get_sensor_def(SECONDARY_QUEUE_SENSOR) if repo.has_sensor_def(SECONDARY_QUEUE_SENSOR) else None
    store = CandleStore(f"sqlite:///{root / 'candles.sqlite'}")
    store.create_schema()

    outcomes: list[RunOutcome] = []
    futures: list[Future[tuple[bool, str, str]]] = []
    lock = threading.Lock()
    wall_t0 = time.time()  # reset when the clock starts

    def finished(outcome: RunOutcome, future: Future[tuple[bool, str, str]]) -> None:
        outcome.finished_at = clock.now()
        try:
            outcome.success, outcome.run_id, outcome.error = future.result()
        except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed run
            outcome.error = f"{type(exc).__name__}: {exc}"

    def submit(request: RunRequest, default_job: str, pool: ProcessPoolExecutor) -> None:
        job_name = request.job_name or default_job
        try:
            parts = requested_partitions(request)
        except KeyError:
            parts = ("", "")
        outcome = RunOutcome(
            purpose=request.tags.get(PURPOSE_TAG, ""), symbol=request.tags.get(SYMBOL_TAG, ""), job_name=job_name,
            partitions=parts, requested_at=pd.Timestamp(request.tags.get(REQUESTED_AT_TAG) or clock.now()),
        )
        with lock:
            outcomes.append(outcome)
        keys = list(request.asset_selection) if request.asset_selection is not None else None
        # as the daemon does, the tick creates the run (not started) before any worker picks it up, so the
        # next tick sees it in progress
        run_id = make_new_run_id()
        instance.add_run(DagsterRun(job_name=job_name, run_id=run_id, status=DagsterRunStatus.NOT_STARTED,
                                    tags=dict(request.tags)))
        future = pool.submit(_worker_run, run_id, job_name, request.partition_key, keys, dict(request.tags),
                             dict(request.run_config or {}))
        future.add_done_callback(lambda f, o=outcome: finished(o, f))
        futures.append(future)

    console = sys.stdout

    def progress_to(text: str) -> None:
        with contextlib.redirect_stdout(console):
            progress(text)

    samples: dict[str, list[tuple[pd.Timestamp, float | None, str, str]]] = defaultdict(list)
    tick_seconds: list[float] = []
    cursor: str | None = None
    ticks = [config.start + pd.Timedelta(seconds=config.tick_seconds * k)
             for k in range(math.ceil(config.minutes * 60 / config.tick_seconds))]
    try:
        with contextlib.ExitStack() as stack, ProcessPoolExecutor(
            max_workers=config.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=(catalog, server.url, config, str(root), instance.get_ref()),
        ) as pool:
            # start every worker before the clock does: a cold worker takes seconds to load the code location
            for ready in [pool.submit(_worker_ready, 0.5) for _ in range(config.workers)]:
                ready.result()
            clock.restart()
            wall_t0 = time.time()
            server.start_clock(wall_t0)
            # the tick logs (queue tables, refresh plans) go to a file, as the daemon keeps them per tick
            tick_log = stack.enter_context(open(root / "ticks.log", "a"))  # noqa: SIM115
            stack.enter_context(contextlib.redirect_stdout(tick_log))
            stack.enter_context(contextlib.redirect_stderr(tick_log))
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
                        submit(request, schedule.job_name, pool)
                if sensor is not None:
                    with build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                              repository_def=repo) as context:
                        data = sensor.evaluate_tick(context)
                    cursor = data.cursor
                    for request in data.run_requests or []:
                        submit(request, request.job_name or "", pool)
                    report = read_queue_report(store)
                    for row in report.itertuples(index=False):
                        samples[row.symbol].append((at, row.lag_seconds, row.state, row.reason))
                tick_seconds.append(time.monotonic() - tick_started)
                if progress is not None and at.second == 0 and at.minute % 5 == 0:
                    done = sum(1 for o in outcomes if o.finished_at is not None)
                    requests, throttled = server.counts()
                    progress_to(f"{at:%H:%M} simulated: {len(outcomes)} runs requested, {done} finished, "
                                f"{requests} API requests, {throttled} 429")
            for future in futures:
                future.exception()  # wait; failures are recorded on the outcome
    finally:
        records = server.stop()
    store.dispose()
    real_seconds = time.time() - wall_t0
    report = _report(catalog, config, records, wall_t0, outcomes, samples, real_seconds)
    report.tick_seconds = tick_seconds
    return report


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
            elif run.finished_at is None or run.finished_at > at + pd.Timedelta(minutes=5):
                check.problems.append(f"{at:%H:%M} refresh finished after the next tick")
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

