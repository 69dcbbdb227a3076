"""Hourly rebuild of the current week's W1 bar of the non-critical symbols.

W1 is derived from base bars already in the store, so keeping it current costs no API request;
one run per weekly job covers every non-critical symbol. Hourly keeps the weekly bar far inside
its 7-day freshness limit (the critical symbols' W1 is rebuilt every 5 minutes by the priority
refresh instead); in the first hour of a Monday the week that just ended is rebuilt as well, so
its last hours are not left out.
"""

import datetime as dt
from collections import defaultdict

from dagster import ScheduleDefinition, ScheduleEvaluationContext, SkipReason, schedule

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.freshness import weeks_covering
from massive_pipeline.operations.refresh import fetches_from_api, tick_time
from massive_pipeline.operations.runs import candle_run_request
from massive_pipeline.operations.settings import PURPOSE_TAG, OperationsSettings, Purpose


def _weekly_refresh(job_name: str, specs: list[SymbolSpec], settings: OperationsSettings) -> ScheduleDefinition:
    needs_key = fetches_from_api(specs, [Timeframe.W1])  # W1 is normally derived: no key needed

    @schedule(
        name=f"weekly_refresh_{job_name.removeprefix('candles_')}",
        cron_schedule=settings.secondary_weekly_cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.WEEKLY_REFRESH.value},
        description=f"Hourly: rebuild this week's W1 bar of the {len(specs)} non-critical symbols from their "
                    "stored base bars (no API requests).",
    )
    def _refresh(context: ScheduleEvaluationContext):
        if needs_key and (no_key := settings.api_key_skip_reason()) is not None:
            return SkipReason(no_key)
        at = tick_time(context, settings)
        today = at.date()
        first_day = today - dt.timedelta(days=1) if at.weekday() == 0 and at.hour == 0 else today
        first, last = weeks_covering(max(first_day, specs[0].start), today)
        return candle_run_request(
            job_name=job_name, keys=[candle_key(s.symbol, Timeframe.W1) for s in specs], first=first, last=last,
            purpose=Purpose.WEEKLY_REFRESH, requested_at=at, tags=settings.runtime_tags(Purpose.WEEKLY_REFRESH),
        )

    return _refresh


def build_weekly_refresh_schedules(catalog: Catalog, settings: OperationsSettings) -> list[ScheduleDefinition]:
    jobs: dict[str, list[SymbolSpec]] = defaultdict(list)
    for spec in catalog:
        if not spec.is_critical and Timeframe.W1 in spec.timeframes:
            jobs[job_name_for(spec, Timeframe.W1)].append(spec)
    return [_weekly_refresh(job, specs, settings) for job, specs in sorted(jobs.items())]
