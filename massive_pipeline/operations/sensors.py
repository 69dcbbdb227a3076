"""Sensors: the secondary refresh queue, and sync status on failed candle runs.

The queue sensor ticks every 30 seconds; everything it decides comes from the candle store (last
bars), the Dagster instance (runs in progress and finished), the shared limiter (budget) and its
cursor (failures), so any process can evaluate it and a restart loses nothing. See `queue.py` for
the ordering and the budget.

The candle assets mark a series `ok` when they write it; a run that fails writes nothing, so the
failure sensor records `error` (with the failed step's message) for the series the run was asked to
refresh and did not - unless a later sync of that series has already succeeded.
"""

from collections.abc import Mapping, Sequence
from contextlib import ExitStack

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
from massive_pipeline.core.catalog import Catalog, Provider, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.operations.queue import evaluate_queue, queue_table, secondary_specs
from massive_pipeline.operations.queue_report import write_queue_report
from massive_pipeline.operations.runs import failure_reason
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env
from massive_pipeline.resources.rate_budgets import budget_from_env, providers_of, read_other_budgets
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
    `massive` from the code location as usual. Binance's budget needs no key: it is opened from
    the environment each tick (`rate_budgets.budget_from_env`, what the code location's `binance`
    resource is built from), so without the Massive key the Binance symbols are still refreshed.
    """
    api = massive if massive is not None else massive_resource_from_env()
    specs = secondary_specs(catalog)
    if not specs:
        return None
    queued_providers = {s.provider for s in specs}
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
        no_key = settings.api_key_skip_reason()
        if no_key is not None and not queued_providers - {Provider.MASSIVE}:
            return SensorResult(skip_reason=no_key)
        with ExitStack() as stack:
            limiters: dict[str, SharedRateLimiter] = {}
            if no_key is None and Provider.MASSIVE in queued_providers:
                resources = stack.enter_context(build_resources({"massive": api}, instance=context.instance))
                limiters[Provider.MASSIVE.value] = resources.massive.limiter
            if Provider.BINANCE in queued_providers:
                limiters[Provider.BINANCE.value] = stack.enter_context(
                    budget_from_env(Provider.BINANCE.value).build_limiter())
            unavailable = {Provider.MASSIVE.value: no_key} if no_key is not None else {}
            return evaluate_secondary_sensor(context, specs, candle_store.store, limiters, settings, unavailable)

    return _secondary_queue


def evaluate_secondary_sensor(
    context: SensorEvaluationContext,
    specs: Sequence[SymbolSpec],
    store: CandleStore,
    limiters: Mapping[str, SharedRateLimiter],
    settings: OperationsSettings,
    unavailable: Mapping[str, str] | None = None,
) -> SensorResult:
    """One tick: each provider's symbols spend the limiter of theirs in `limiters`; a provider
    missing there has its symbols wait for the reason `unavailable` gives."""
    now = settings.now()
    others = [b for b in read_other_budgets(providers_of(specs)) if b.provider not in limiters]
    tick = evaluate_queue(specs, store, context.instance, limiters, context.cursor, now, settings,
                          unavailable=unavailable, other_budgets=others)
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
