"""Hourly rebuild of the derived bars that live in partitions of their own: the current week's W1
bar of the non-critical symbols, and the current New York sessions (D1_NY) and weeks (W1_NY) of
every symbol with the New York close convention.

These bars are resampled from base bars already in the store, so keeping them current costs no
API request; one run per job covers all its symbols. Hourly keeps them far inside their freshness
limits (the critical symbols' W1 is rebuilt every 5 minutes by the priority refresh instead; their
New York bars, a second view of the same day, are rebuilt here with the others). Each tick rebuilds
the partitions overlapping yesterday and today (UTC), so the session or week that just ended is
rebuilt once more after its last base bars arrived.
"""

import datetime as dt
from collections import defaultdict

from dagster import ScheduleDefinition, ScheduleEvaluationContext, SkipReason, schedule

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.candles.partitions import OWN_PARTITION_TIMEFRAMES, covering_partitions
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.refresh import fetches_from_api, tick_time
from massive_pipeline.operations.runs import candle_run_request
from massive_pipeline.operations.settings import PURPOSE_TAG, OperationsSettings, Purpose


def _schedule_name(job_name: str, timeframe: Timeframe) -> str:
    prefix = "weekly_refresh" if timeframe is Timeframe.W1 else "hourly_refresh"
    return f"{prefix}_{job_name.removeprefix('candles_')}"


def _derived_refresh(job_name: str, timeframe: Timeframe, specs: list[SymbolSpec], settings: OperationsSettings
                     ) -> ScheduleDefinition:
    needs_key = fetches_from_api(specs, [timeframe])  # normally derived: no key needed

    @schedule(
        name=_schedule_name(job_name, timeframe),
        cron_schedule=settings.secondary_weekly_cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.WEEKLY_REFRESH.value},
        description=f"Hourly: rebuild the current {timeframe.value} bars of {len(specs)} symbols from their "
                    "stored base bars (no API requests).",
    )
    def _refresh(context: ScheduleEvaluationContext):
        if needs_key and (no_key := settings.api_key_skip_reason()) is not None:
            return SkipReason(no_key)
        at = tick_time(context, settings)
        today = at.date()
        first, last = covering_partitions(specs, timeframe, today - dt.timedelta(days=1), today)
        return candle_run_request(
            job_name=job_name, keys=[candle_key(s.symbol, timeframe) for s in specs], first=first, last=last,
            purpose=Purpose.WEEKLY_REFRESH, requested_at=at, tags=settings.runtime_tags(Purpose.WEEKLY_REFRESH),
            run_config=settings.run_config(Purpose.WEEKLY_REFRESH),
        )

    return _refresh


def build_weekly_refresh_schedules(catalog: Catalog, settings: OperationsSettings) -> list[ScheduleDefinition]:
    """One hourly schedule per job of W1 (non-critical symbols), D1_NY and W1_NY (every symbol)."""
    jobs: dict[tuple[str, Timeframe], list[SymbolSpec]] = defaultdict(list)
    for spec in catalog:
        for tf in OWN_PARTITION_TIMEFRAMES:
            if tf in spec.timeframes and not (tf is Timeframe.W1 and spec.is_critical):
                jobs[(job_name_for(spec, tf), tf)].append(spec)
    return [_derived_refresh(job, tf, specs, settings) for (job, tf), specs in sorted(jobs.items())]
