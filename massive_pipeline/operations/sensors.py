"""Sensors: the secondary refresh queue, and sync status on failed candle runs.

The queue sensor ticks every 30 seconds; everything it decides comes from the candle store (last
bars), the Dagster instance (runs in progress and finished), the shared limiter (budget) and its
cursor (failures), so any process can evaluate it and a restart loses nothing. See `queue.py` for
the ordering and the budget.

The candle assets mark a series `ok` when they write it; a run that fails writes nothing, so the
failure sensor records `error` (with the failed step's message) for the series the run was asked to
refresh and did not - unless a later sync of that series has already succeeded.
"""

from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetKey,
    DagsterEventType,
    RunFailureSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    build_resources,
    run_failure_sensor,
    sensor,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import build_candle_jobs, job_name_for
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.operations.queue import evaluate_queue, queue_table, secondary_specs
from massive_pipeline.operations.queue_report import write_queue_report
from massive_pipeline.operations.runs import failure_reason
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env
from massive_pipeline.store import CandleStore

SECONDARY_QUEUE_SENSOR = "secondary_queue"
SYNC_FAILURE_SENSOR = "sync_status_on_failure"


def build_secondary_queue_sensor(
    catalog: Catalog, settings: OperationsSettings, massive: MassiveResource | None = None
) -> SensorDefinition | None:
    """The queue sensor; `massive` is the code location's API resource (default: from the environment).

    The sensor opens `massive` itself (`build_resources`, after checking the key) rather than
    declaring it as a resource: Dagster builds a sensor's declared resources before its body runs,
    and `massive` cannot be built without its key - every tick would error instead of saying why it
    does nothing. It only reads the shared limiter's budget through it; the runs it requests get
    `massive` from the code location as usual.
    """
    api = massive if massive is not None else massive_resource_from_env()
    specs = secondary_specs(catalog)
    if not specs:
        return None
    names = {job_name_for(s, Timeframe.D1) for s in specs}
    jobs = [j for j in build_candle_jobs(catalog) if j.name in names]

    @sensor(
        name=SECONDARY_QUEUE_SENSOR,
        jobs=jobs,
        minimum_interval_seconds=settings.secondary_interval_seconds,
        default_status=settings.sensor_status,
        description=f"Refreshes the {len(specs)} non-critical symbols by priority tier and staleness with the "
                    "rate budget the critical reserve leaves; up to 3 failures per symbol per day. The queue is "
                    "in each tick's log, the skip reason, the `operations_queue` table and `massive-pipeline status`.",
    )
    def _secondary_queue(context: SensorEvaluationContext, candle_store: CandleStoreResource) -> SensorResult:
        if (no_key := settings.api_key_skip_reason()) is not None:
            return SensorResult(skip_reason=no_key)
        with build_resources({"massive": api}, instance=context.instance) as resources:
            return evaluate_secondary_sensor(context, specs, candle_store.store, resources.massive, settings)

    return _secondary_queue


def evaluate_secondary_sensor(
    context: SensorEvaluationContext,
    specs: Sequence[SymbolSpec],
    store: CandleStore,
    massive: MassiveResource,
    settings: OperationsSettings,
) -> SensorResult:
    now = settings.now()
    tick = evaluate_queue(specs, store, context.instance, massive.limiter, context.cursor, now, settings)
    write_queue_report(store, tick.entries, now)
    table = queue_table(tick.entries)
    for note in tick.notes:
        context.log.info(note)
    context.log.info(f"{tick.summary()}\n{table}")
    if tick.requests:
        return SensorResult(run_requests=tick.requests, cursor=tick.state.to_cursor())
    return SensorResult(skip_reason=f"{tick.summary()}\n{table}", cursor=tick.state.to_cursor())


def _series_of(key: AssetKey) -> tuple[str, Timeframe] | None:
    if len(key.path) != 3 or key.path[0] != "candles":
        return None
    try:
        return key.path[1].upper(), parse_timeframe(key.path[2])
    except UnknownTimeframeError:
        return None


def record_failed_run(context: RunFailureSensorContext, store: CandleStore) -> list[str]:
    """Mark the series a failed run did not write as `error`; returns the series marked."""
    run = context.dagster_run
    series = [s for s in (_series_of(k) for k in sorted(run.asset_selection or (), key=str)) if s is not None]
    if not series:
        return []
    written = {
        record.event_log_entry.dagster_event.asset_key
        for record in context.instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=10_000
        ).records
        if record.event_log_entry.dagster_event is not None
    }
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = pd.Timestamp(record.end_time, unit="s", tz="UTC") if record and record.end_time else pd.Timestamp.now("UTC")
    status = store.sync_status()
    reason = failure_reason(context.instance, run.run_id)
    marked: list[str] = []
    for symbol, tf in series:
        if candle_key(symbol, tf) in written:
            continue
        row = status[(status["symbol"] == symbol) & (status["timeframe"] == tf.value)]
        if len(row) and row["status"].iloc[0] == "ok" and row["last_sync_at"].iloc[0] > ended:
            continue  # a later run already synced it
        store.update_sync_status(symbol, tf, status="error", error=f"run {run.run_id[:8]}: {reason}")
        marked.append(f"{symbol} {tf.value}")
    return marked


def build_sync_failure_sensor(settings: OperationsSettings) -> SensorDefinition:
    @run_failure_sensor(
        name=SYNC_FAILURE_SENSOR,
        default_status=settings.sensor_status,
        description="Records `error` and the failed step's message in `sync_status` for the candle series a "
                    "failed run did not write.",
    )
    def _on_failure(context: RunFailureSensorContext, candle_store: CandleStoreResource) -> None:
        marked = record_failed_run(context, candle_store.store)
        if marked:
            context.log.info(f"sync_status error for {', '.join(marked)} (run {context.dagster_run.run_id[:8]})")

    return _on_failure
