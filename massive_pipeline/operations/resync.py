"""The 04:00 UTC re-sync: the last N complete days of every symbol, fetched again.

Providers correct recent history (late trades, revised aggregates); re-materializing the last
few days replaces those windows wholesale, so corrections land and nothing is duplicated. One run
per symbol (one ranged request for its base timeframe, plus any fetched timeframe), all
timeframes of the daily job; the W1 bars of those weeks (and the D1_NY and W1_NY bars of those
New York sessions) are rebuilt at 04:30 from the re-synced bars they derive from (the base, or
for W1 a fetched D1, which the daily run re-fetched too), in one run per job (no API
requests). With the free plan the whole catalog
takes about ten minutes of budget, which the limiter spreads out. A re-sync run is ordinary work,
for critical symbols too: the limiter's reserve stays with the priority refresh throughout.
"""

import datetime as dt
from collections import defaultdict

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, SkipReason, schedule

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.candles.partitions import OWN_PARTITION_TIMEFRAMES, covering_partitions
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.refresh import fetches_from_api, tick_time
from massive_pipeline.operations.runs import (
    candle_run_request,
    daily_run_request,
    daily_timeframes,
    iso_minute,
    pending_key,
    pending_runs,
)
from massive_pipeline.operations.settings import (
    DAGSTER_PRIORITY_TAG,
    PURPOSE_TAG,
    OperationsSettings,
    Purpose,
)

RESYNC_RUN_PRIORITY = "-5"


def resync_days(spec: SymbolSpec, today: dt.date, days: int) -> tuple[dt.date, dt.date] | None:
    """The `days` complete UTC days before today, clipped to the symbol's history."""
    first, last = max(spec.start, today - dt.timedelta(days=days)), today - dt.timedelta(days=1)
    return (first, last) if first <= last else None


def _daily_resync(job_name: str, specs: list[SymbolSpec], settings: OperationsSettings) -> ScheduleDefinition:
    @schedule(
        name=f"resync_{job_name.removeprefix('candles_')}",
        cron_schedule=settings.resync_cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.RESYNC.value},
        description=f"04:00 UTC: re-fetch the last {settings.resync_days} complete days of every symbol "
                    f"({len(specs)} symbols) to pick up provider corrections.",
    )
    def _resync(context: ScheduleEvaluationContext):
        if (no_key := settings.api_key_skip_reason()) is not None:
            return SkipReason(no_key)
        at = tick_time(context, settings)
        running = pending_runs(context.instance, Purpose.RESYNC, job_names=[job_name])
        requests: list[RunRequest] = []
        skipped: list[str] = []
        for spec in specs:
            window = resync_days(spec, at.date(), settings.resync_days)
            if window is None:
                skipped.append(f"{spec.symbol}: history starts {spec.start}")
            elif pending_key(job_name, spec.symbol) in running:
                skipped.append(f"{spec.symbol}: yesterday's re-sync still in progress")
            else:
                requests.append(daily_run_request(spec, *window, Purpose.RESYNC, at,
                                                  {DAGSTER_PRIORITY_TAG: RESYNC_RUN_PRIORITY,
                                                   **settings.runtime_tags(Purpose.RESYNC)}))
        if skipped:
            context.log.info("re-sync skipped " + "; ".join(skipped))
        return requests or SkipReason(f"nothing to re-sync at {iso_minute(at)}: " + "; ".join(skipped))

    return _resync


def _derived_resync(job_name: str, timeframe: Timeframe, specs: list[SymbolSpec], settings: OperationsSettings
                    ) -> ScheduleDefinition:
    needs_key = fetches_from_api(specs, [timeframe])  # normally derived: no key needed
    prefix = "resync" if timeframe is Timeframe.W1 else "resync_derived"

    @schedule(
        name=f"{prefix}_{job_name.removeprefix('candles_')}",
        cron_schedule=settings.weekly_resync_cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.RESYNC.value},
        description=f"04:30 UTC: rebuild the {timeframe.value} bars of the days the 04:00 re-sync touched, from "
                    "the re-synced bars they derive from (the base, or a fetched D1; no API requests).",
    )
    def _resync(context: ScheduleEvaluationContext):
        if needs_key and (no_key := settings.api_key_skip_reason()) is not None:
            return SkipReason(no_key)
        at = tick_time(context, settings)
        today = at.date()
        keys = [candle_key(s.symbol, timeframe) for s in specs if today > s.start]
        if not keys:
            return SkipReason("no symbol has history before today")
        first, last = covering_partitions(specs, timeframe, today - dt.timedelta(days=settings.resync_days), today)
        return candle_run_request(job_name=job_name, keys=keys, first=first, last=last, purpose=Purpose.RESYNC,
                                  requested_at=at, tags={DAGSTER_PRIORITY_TAG: RESYNC_RUN_PRIORITY,
                                                         **settings.runtime_tags(Purpose.RESYNC)})

    return _resync


def build_resync_schedules(catalog: Catalog, settings: OperationsSettings) -> list[ScheduleDefinition]:
    daily: dict[str, list[SymbolSpec]] = defaultdict(list)
    derived: dict[tuple[str, Timeframe], list[SymbolSpec]] = defaultdict(list)
    for spec in catalog:
        if daily_timeframes(spec):
            daily[job_name_for(spec, Timeframe.D1)].append(spec)
        for tf in OWN_PARTITION_TIMEFRAMES:
            if tf in spec.timeframes:
                derived[(job_name_for(spec, tf), tf)].append(spec)
    return [
        *(_daily_resync(job, specs, settings) for job, specs in sorted(daily.items())),
        *(_derived_resync(job, tf, specs, settings) for (job, tf), specs in sorted(derived.items())),
    ]
