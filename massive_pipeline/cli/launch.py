"""Launching candle runs from the command line, recorded in the Dagster instance.

A CLI backfill is what a single-run backfill from the UI is: one run per symbol and partitions
definition, covering the whole partition range (`dagster/asset_partition_range_start`/`_end`
tags), so the base timeframe is fetched with one ranged request per 50,000 bars. The runs use
the code location's own jobs, so the UI lists them under those jobs and can re-execute them.
This module is the command line's in-process launcher (`run_job_in_process` for its other jobs);
schedules and sensors request their runs from Dagster instead, through the run queue.

In-process runs skip the run queue, and the daemon's run monitoring has no worker of theirs to
check; it only sees their run records. So each run carries a `dagster/max_runtime` sized to its
purpose (`OperationsSettings.max_runtime`, `MASSIVE_MAX_RUNTIME`; a backfill: 12 hours), for
the one case where that matters: the command was killed and left its run STARTED, which keeps
a gap `filling` or a symbol "in progress" until a daemon on the same instance fails the run once
that time has passed. A daemon cannot stop a live command-line run (no run worker of its own to
terminate; it would only mark the run failed while it goes on): the maximum is sized so that only
a dead one reaches it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions, ExecuteInProcessResult

from massive_pipeline.candles.event_batching import event_batching
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.candles.partitions import PartitionRangeError, PlannedRange, planned_ranges
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    SerializableErrorInfo,
)
from massive_pipeline.operations.settings import (
    BACKFILL_RUNTIME_KEY,
    DAGSTER_MAX_RUNTIME_TAG,
    PURPOSE_TAG,
    OperationsSettings,
)


class BackfillError(RuntimeError):
    """A run of the backfill failed; the message names the symbol, timeframes and range."""


@dataclass
class RunSummary:
    symbol: str
    job_name: str
    timeframes: list[Timeframe]
    first_partition: str
    last_partition: str
    run_id: str
    success: bool
    api_requests: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    # per timeframe, summed over the run's partitions: what the answer lacked, removed, revised
    missing_from_answer: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    revised: dict[str, int] = field(default_factory=dict)


def with_max_runtime(tags: Mapping[str, str] | None, settings: OperationsSettings | None = None) -> dict[str, str]:
    """`tags` plus the `dagster/max_runtime` of their purpose (a backfill's without one), unless
    the caller set one already."""
    out = dict(tags or {})
    if DAGSTER_MAX_RUNTIME_TAG not in out:
        settings = settings or OperationsSettings.from_env()
        purpose = out.get(PURPOSE_TAG, BACKFILL_RUNTIME_KEY)
        out.update(settings.runtime_tags(purpose if purpose in settings.max_runtime else BACKFILL_RUNTIME_KEY))
    return out


def _metadata_int(meta: dict, key: str) -> int:
    value = meta.get(key)
    return int(value.value) if value is not None else 0


def run_candle_backfill(
    defs: Definitions,
    instance: DagsterInstance,
    specs: Sequence[SymbolSpec],
    timeframes: Sequence[Timeframe],
    start: dt.date,
    end: dt.date,
    *,
    tags: dict[str, str] | None = None,
    on_run: Callable[[RunSummary], None] | None = None,
    accept_removals: bool = False,
    settings: OperationsSettings | None = None,
) -> list[RunSummary]:
    """Materialize `timeframes` of `specs` for the UTC days start..end, one run per symbol and job.

    `accept_removals` sets the candle assets' run config so stored bars the provider's answer no
    longer holds are deleted (listed in the metadata) instead of kept.
    """
    summaries: list[RunSummary] = []
    run_tags = with_max_runtime(tags, settings)
    try:
        plan = planned_ranges(specs, timeframes, start, end)
    except PartitionRangeError as exc:
        raise BackfillError(str(exc)) from None
    for spec in specs:
        by_job: dict[str, list[PlannedRange]] = {}
        for planned in plan:
            if planned.spec is spec:
                by_job.setdefault(job_name_for(spec, planned.timeframe), []).append(planned)
        # daily job first: the weekly bars are derived from the daily base bars it writes
        for job_name, ranges in sorted(by_job.items(), key=lambda kv: "weekly" in kv[0]):
            summaries.append(run_ranged(defs, instance, job_name, ranges, tags=run_tags, on_run=on_run,
                                        accept_removals=accept_removals))
    return summaries


def run_ranged(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    ranges: Sequence[PlannedRange],
    *,
    tags: Mapping[str, str],
    on_run: Callable[[RunSummary], None] | None = None,
    accept_removals: bool = False,
    provider_days_before: str = "",
) -> RunSummary:
    """One ranged run of `job_name` over the series of `ranges`, which share one symbol and one
    partition range (a run has one range); raises `BackfillError` naming the run when it fails.

    The unit both `run_candle_backfill` and the bootstrap (which gives each timeframe its own
    range) launch, so a bootstrap run is exactly a CLI backfill run.
    """
    spec = ranges[0].spec
    first, last = ranges[0].first, ranges[0].last
    if any(r.spec is not spec or (r.first, r.last) != (first, last) for r in ranges):
        raise ValueError(f"one run holds one symbol and one partition range: {job_name} got {ranges!r}")
    tfs = [r.timeframe for r in ranges]
    selection: list[AssetKey] = [r.key for r in ranges]
    job = defs.resolve_job_def(job_name)
    op_config: dict[str, dict[str, object]] = {}
    for r in ranges:
        config: dict[str, object] = {"accept_removals": True} if accept_removals else {}
        if provider_days_before and r.timeframe is Timeframe.D1:  # a bootstrap's day fill
            config["provider_days_before"] = provider_days_before
        if config:
            op_config[r.key.to_python_identifier()] = {"config": config}
    run_config = {"ops": op_config} if op_config else None
    with event_batching():  # a partition range's materializations in batches, not one write each
        result = job.execute_in_process(
            instance=instance,
            asset_selection=selection,
            run_config=run_config,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last,
                "massive/symbol": spec.symbol,
                **tags,
            },
            raise_on_error=False,
        )
    summary = RunSummary(spec.symbol, job_name, tfs, first, last, result.run_id, result.success)
    # a ranged run records one materialization per partition, all with the run's metadata
    seen: set[str] = set()
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        key = mat.asset_key.path[-1].upper()
        if key in seen:
            continue
        seen.add(key)
        meta = mat.metadata
        summary.rows_written[key] = _metadata_int(meta, "rows_written")
        summary.api_requests += _metadata_int(meta, "api_requests")
        summary.missing_from_answer[key] = _metadata_int(meta, "bars_missing_from_answer")
        summary.removed[key] = _metadata_int(meta, "rows_removed")
        summary.revised[key] = _metadata_int(meta, "rows_revised")
    if on_run:
        on_run(summary)
    if not result.success:
        failures = result.get_step_failure_events()
        error = failures[0].step_failure_data.error if failures else _run_failure_error(result)
        # Dagster wraps the real error; unwrap only Dagster's own wrappers, so the message
        # is the pipeline's error (which names the store or API request), not a driver's cause.
        while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        # one line: the CLI prints this as its single error line
        detail = " ".join(error.message.split()) if error is not None else "see the run's logs"
        raise BackfillError(
            f"run {result.run_id} for {spec.symbol} {','.join(t.value for t in tfs)} "
            f"{first}..{last} failed: {detail}"
        )
    return summary


def run_job_in_process(
    defs: Definitions, instance: DagsterInstance, job_name: str, *, run_config: dict | None = None,
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """Execute one of the code location's jobs in this process, recorded in `instance`.

    The command line's launcher: it waits for the run and prints its outcome. Unattended work is
    requested from Dagster by schedules and sensors instead, so it goes through the run queue.
    """
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        run_config=run_config, instance=instance, tags=with_max_runtime({**job.tags, **(tags or {})}),
        raise_on_error=False,
    )


def _run_failure_error(result: ExecuteInProcessResult) -> SerializableErrorInfo | None:
    """The error of a run that failed outside any step (a resource that could not start)."""
    failed = [e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE]
    data = failed[0].event_specific_data if failed else None
    return getattr(data, "error", None)
