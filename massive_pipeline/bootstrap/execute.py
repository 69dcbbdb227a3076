"""Running a bootstrap plan: in this process, run by run, or handed to the Dagster daemon.

In this process, each planned run is a CLI backfill run (`cli/launch.run_ranged`: the code
location's own job, a ranged single run recorded in the instance), launched in plan order
(every fetching run of a symbol before the runs deriving from it), with a progress line after
each: the bars it wrote per series, the requests used against the plan, the shared limiter's
budget, and an ETA. A run that fails stops the bootstrap with its one-line error; what the runs
before it stored stays stored, and the next `bootstrap` plans only the rest (`coverage.py`).

Submitted, the D1 day fills (one request a symbol, `DerivedDayConfig`) run here first, and the
rest of the plan becomes one asset backfill per symbol (`backfill_submission.submit_ranges`,
the path of `backfill --submit`), each series with its own partition ranges; the daemon runs
them under the run queue and pools, and a later `bootstrap --plan-only` shows what is left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dagster import DagsterInstance, Definitions

from massive_pipeline.bootstrap.plan import Plan, PlannedRun, Rate
from massive_pipeline.bootstrap.report import duration
from massive_pipeline.candles.backfill_submission import SubmittedBackfill, submit_ranges
from massive_pipeline.cli.launch import RunSummary, run_ranged, with_max_runtime
from massive_pipeline.massive.ratelimit import LimiterStats

BOOTSTRAP_PURPOSE = "bootstrap"
BOOTSTRAP_TAGS: Mapping[str, str] = {"massive/purpose": BOOTSTRAP_PURPOSE}


@dataclass
class Progress:
    """Where a running bootstrap stands; `line` words it after each run."""

    plan: Plan
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    runs_done: int = 0
    requests_used: int = 0
    requests_planned_done: int = 0
    partitions_done: int = 0
    bars: dict[str, int] = field(default_factory=dict)  # "EURUSD M1" -> bars written

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def partitions_total(self) -> int:
        return sum(_partitions(run) for run in self.plan.runs)

    def record(self, run: PlannedRun, summary: RunSummary) -> None:
        self.runs_done += 1
        self.requests_used += summary.api_requests
        self.requests_planned_done += run.requests
        self.partitions_done += _partitions(run)
        for tf, rows in summary.rows_written.items():
            key = f"{run.spec.symbol} {tf}"
            self.bars[key] = self.bars.get(key, 0) + rows

    def eta_seconds(self, rate: Rate) -> float:
        """The longer of what the API budget needs for the requests left and what the runs so far
        took per partition for the partitions left (bookkeeping, not the API, sets the pace of
        the derived runs)."""
        left = max(0, self.plan.requests - self.requests_planned_done)
        api = rate.eta(left).total_seconds() if left else 0.0
        elapsed = self.clock() - self.started
        per_partition = elapsed / self.partitions_done if self.partitions_done else 0.0
        return max(api, per_partition * (self.partitions_total - self.partitions_done))

    def line(self, run: PlannedRun, summary: RunSummary, stats: LimiterStats | None) -> str:
        total = len(self.plan.runs)
        bars = ", ".join(f"{k}={v:,}" for k, v in summary.rows_written.items())
        budget = (f"; budget {stats.remaining} of {stats.limit} left in the window, {stats.waiting} waiting"
                  if stats is not None else "")
        return (f"[{self.runs_done:>{len(str(total))}}/{total}] {run.spec.symbol} {','.join(t.value for t in run.timeframes)} "
                f"{run.first}..{run.last}: {summary.api_requests} request(s) (planned {run.requests}), bars {bars or 'none'}"
                f" | requests {self.requests_used} used of {self.plan.requests} planned{budget}; "
                f"ETA {duration(dt.timedelta(seconds=self.eta_seconds(self.plan.rate)))}")


def _partitions(run: PlannedRun) -> int:
    """Partitions a run materializes, all its series together (a day is one key per series)."""
    first, last = dt.date.fromisoformat(run.first), dt.date.fromisoformat(run.last)
    days = (last - first).days
    per = 7 if any(t.is_weekly for t in run.timeframes) else 1
    return (days // per + 1) * len(run.ranges)


def run_plan(
    defs: Definitions,
    instance: DagsterInstance,
    plan: Plan,
    *,
    tags: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] = print,
    limiter_stats: Callable[[], LimiterStats] | None = None,
    accept_removals: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Every run of `plan`, in order, in this process; raises `BackfillError` at the first failure."""
    progress = Progress(plan, clock)
    run_tags = with_max_runtime({**BOOTSTRAP_TAGS, **(tags or {})})
    for run in plan.runs:
        summary = run_ranged(defs, instance, run.job_name, run.ranges, tags=run_tags, accept_removals=accept_removals,
                             provider_days_before=run.provider_days_before)
        progress.record(run, summary)
        on_line(progress.line(run, summary, limiter_stats() if limiter_stats else None))
    return progress


def submit_plan(
    defs: Definitions, instance: DagsterInstance, plan: Plan, *, tags: Mapping[str, str] | None = None,
    accept_removals: bool = False, on_line: Callable[[str], None] = print,
) -> list[SubmittedBackfill]:
    """One asset backfill per symbol with runs left; returns them without waiting.

    The D1 day fills (one request a symbol) run here first, in plan order: a backfill's run config
    is every run's, and the daemon would merge a fill with the derived D1 days after it into one
    run; done first, the W1 weeks of the backfill find their day bars stored.
    """
    fills = [run for run in plan.runs if run.provider_days_before]
    if fills:
        run_plan(defs, instance, dataclasses.replace(plan, symbols=tuple(
            dataclasses.replace(sp, runs=tuple(r for r in sp.runs if r.provider_days_before)) for sp in plan.symbols)),
            tags=tags, accept_removals=accept_removals, on_line=on_line)
    out: list[SubmittedBackfill] = []
    for sp in plan.symbols:
        ranges = [r for s in sp.series if not s.fill_before for r in s.ranges()]
        if not ranges:
            continue
        tfs = ",".join(s.timeframe.value for s in sp.series if s.pending)
        out.append(submit_ranges(
            defs, instance, ranges, title=f"Bootstrap {sp.spec.symbol} {tfs} to {plan.today}",
            tags={**BOOTSTRAP_TAGS, **(tags or {})}, accept_removals=accept_removals,
            origin="`massive-pipeline bootstrap --submit`",
        ))
    return out
