"""Run requests for candle jobs, and what the instance says about runs already launched.

Schedules and sensors share these helpers so that every automated run carries the same tags
(purpose, symbol, the tick that asked for it) and so that "is a run for this still in progress?"
is answered the same way everywhere: from the Dagster instance, never from process memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG, SYMBOL_TAG, Purpose

# Not finished: the run exists and may still spend requests or write partitions.
PENDING_STATUSES: tuple[DagsterRunStatus, ...] = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)
FINISHED_STATUSES: tuple[DagsterRunStatus, ...] = (
    DagsterRunStatus.SUCCESS,
    DagsterRunStatus.FAILURE,
    DagsterRunStatus.CANCELED,
)


def daily_timeframes(spec: SymbolSpec) -> list[Timeframe]:
    """The symbol's timeframes in its daily job: the base, fetched and derived ones up to D1 (the
    New York close timeframes have jobs of their own)."""
    return [tf for tf in spec.timeframes if not tf.is_weekly and not tf.is_new_york]


def fetched_timeframes(spec: SymbolSpec) -> list[Timeframe]:
    """Timeframes whose refresh costs API requests."""
    return [tf for tf in spec.timeframes if spec.timeframe_source(tf) != "derived"]


def requests_per_refresh(spec: SymbolSpec, days: int = 1) -> int:
    """API requests one refresh of `days` days costs: one ranged request per fetched timeframe,
    plus a page per 50,000 bars."""
    total = 0
    for tf in fetched_timeframes(spec):
        bars = days * 1440 // tf.minutes
        total += max(1, -(-bars // 50_000))
    return total


def iso_minute(ts: pd.Timestamp | dt.datetime) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def partition_tags(first: str, last: str) -> tuple[str | None, dict[str, str]]:
    """A single partition goes in `partition_key` (the UI's partition column); a range in tags."""
    if first == last:
        return first, {}
    return None, {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def candle_run_request(
    *,
    job_name: str,
    keys: Sequence[AssetKey],
    first: dt.date,
    last: dt.date,
    purpose: Purpose,
    requested_at: pd.Timestamp,
    symbol: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> RunRequest:
    """A run of `keys` over the partitions first..last (days, or Mondays for the weekly job);
    `run_config` is `OperationsSettings.run_config(purpose)` (where the steps run)."""
    partition_key, range_tags = partition_tags(first.isoformat(), last.isoformat())
    run_tags = {PURPOSE_TAG: purpose.value, REQUESTED_AT_TAG: iso_minute(requested_at), **range_tags}
    if symbol is not None:
        run_tags[SYMBOL_TAG] = symbol
    run_tags.update(tags or {})
    who = symbol or "all"
    return RunRequest(
        run_key=f"{purpose.value}:{job_name}:{who}:{first}:{last}:{iso_minute(requested_at)}",
        job_name=job_name,
        asset_selection=list(keys),
        partition_key=partition_key,
        tags=run_tags,
        run_config=run_config or {},
    )


def daily_run_request(
    spec: SymbolSpec, first: dt.date, last: dt.date, purpose: Purpose, requested_at: pd.Timestamp,
    tags: Mapping[str, str] | None = None, run_config: Mapping[str, Any] | None = None,
) -> RunRequest:
    return candle_run_request(
        job_name=job_name_for(spec, Timeframe.D1),
        keys=[candle_key(spec.symbol, tf) for tf in daily_timeframes(spec)],
        first=first, last=last, purpose=purpose, requested_at=requested_at, symbol=spec.symbol, tags=tags,
        run_config=run_config,
    )


def requested_partitions(request: RunRequest) -> tuple[str, str]:
    """(first, last) partition keys a request covers, whichever way it names them."""
    if request.partition_key is not None:
        return request.partition_key, request.partition_key
    tags = request.tags
    return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]


# Not started yet: the run has spent none of its requests; a started one has (its fetch comes first).
UNSTARTED_STATUSES: tuple[DagsterRunStatus, ...] = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
)


def pending_runs(
    instance: DagsterInstance,
    purpose: Purpose,
    *,
    job_names: Iterable[str] | None = None,
    statuses: Sequence[DagsterRunStatus] = PENDING_STATUSES,
    limit: int = 500,
) -> dict[str, str]:
    """{"job|symbol": run id} of runs launched for `purpose` that are in one of `statuses` (not finished)."""
    names = None if job_names is None else set(job_names)
    records = instance.get_run_records(
        RunsFilter(statuses=list(statuses), tags={PURPOSE_TAG: purpose.value}), limit=limit
    )
    out: dict[str, str] = {}
    for record in records:
        run = record.dagster_run
        if names is not None and run.job_name not in names:
            continue
        out.setdefault(f"{run.job_name}|{run.tags.get(SYMBOL_TAG, '')}", run.run_id)
    return out


def pending_key(job_name: str, symbol: str | None) -> str:
    return f"{job_name}|{symbol or ''}"


def failure_reason(instance: DagsterInstance, run_id: str, max_chars: int = 240) -> str:
    """The first failed step's innermost error, on one line: what a person needs to act on."""
    from dagster import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = event.step_failure_data.error if event is not None and event.step_failure_data else None
        while error is not None and error.cause is not None:  # Dagster wraps the real error
            error = error.cause
        if error is not None and error.message.strip():
            text = " ".join(error.message.split())
            return f"{event.step_key}: {text}"[:max_chars]
    return f"run {run_id[:8]} failed (see its logs)"
