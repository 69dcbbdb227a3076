"""The 5-minute priority refresh of the critical symbols.

Every tick requests, per critical symbol, the current daily partition of its base timeframe and
the timeframes derived from it (the previous day too just after midnight UTC, and back to the
last stored bar if that is older), and the current week's W1 partition. A market that is closed
and whose bars reach its close is left alone: a forex pair on Saturday needs nothing. The assets
take their tokens from the limiter's critical reserve because their runs carry
`massive/purpose: priority_refresh` (`resources.uses_critical_reserve`), so a backfill in progress
cannot delay them beyond the reserve; a backfill of the same symbols is ordinary work.

Dagster schedules launch one job each, so there is one schedule per job the critical symbols use
(normally `candles_daily_from_…` and `candles_weekly_from_…`), all on the same cron. The weekly
run reads the base bars the daily run of the same tick is writing, so the W1 bar lags the daily
data by at most one tick: five minutes against W1's 7-day freshness limit.

A refresh run that hangs or whose process died is failed by run monitoring once it has been in
progress `OperationsSettings.max_runtime["priority_refresh"]` (its `dagster/max_runtime` tag, 4
minutes); the symbol is then no longer in flight and the next tick requests it again. Run retries
are off for these runs (`dagster/max_retries: 0`): a retry would re-run an old tick's window and
keep the symbol "in progress", while the next tick covers the same days and anything newer.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.core.catalog import Catalog, Provider, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.freshness import SETTLE, Freshness, assess, refresh_days, weeks_covering
from massive_pipeline.operations.runs import (
    candle_run_request,
    daily_run_request,
    daily_timeframes,
    iso_minute,
    pending_key,
    pending_runs,
)
from massive_pipeline.operations.settings import (
    DAGSTER_MAX_RETRIES_TAG,
    DAGSTER_PRIORITY_TAG,
    PURPOSE_TAG,
    REQUESTED_AT_TAG,
    SYMBOL_TAG,
    OperationsSettings,
    Purpose,
)
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

CRITICAL_RUN_PRIORITY = "10"
# A crashed refresh is superseded by the next tick, not retried (module docstring).
CRITICAL_RUN_RETRIES = "0"


@dataclass(frozen=True)
class RefreshPlan:
    """What the priority refresh does for one critical symbol at one tick, and why."""

    spec: SymbolSpec
    freshness: Freshness
    days: tuple[dt.date, dt.date] | None
    reason: str


def _ts(ts: pd.Timestamp | None) -> str:
    return "none" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def last_refresh_requested_at(
    instance: DagsterInstance, purpose: Purpose, job_name: str, symbol: str
) -> pd.Timestamp | None:
    """When the newest successful `purpose` run of this symbol's job was asked for (tick time)."""
    records = instance.get_run_records(
        RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS],
                   tags={PURPOSE_TAG: purpose.value, SYMBOL_TAG: symbol}),
        limit=1,
    )
    if not records:
        return None
    text = records[0].dagster_run.tags.get(REQUESTED_AT_TAG)
    return None if text is None else pd.Timestamp(text)


def plan_refresh(
    spec: SymbolSpec,
    store: CandleStore,
    instance: DagsterInstance,
    at: pd.Timestamp,
    settings: OperationsSettings,
    purpose: Purpose,
) -> RefreshPlan:
    """Refresh while the market trades; once closed, only until a refresh has seen the close."""
    base = spec.base_timeframe
    fresh = assess(spec, base, store.last_bar_ts(spec.symbol, base), at)
    if not fresh.market_open:
        if not fresh.stale:
            return RefreshPlan(spec, fresh, None, f"market closed since {_ts(fresh.reference)}; last bar "
                                                   f"{_ts(fresh.last_bar)} reaches the close")
        close = fresh.reference
        requested = last_refresh_requested_at(instance, purpose, job_name_for(spec, Timeframe.D1), spec.symbol)
        if close is not None and requested is not None and requested >= close + SETTLE:
            return RefreshPlan(spec, fresh, None, f"market closed since {_ts(close)}; refreshed at "
                                                   f"{_ts(requested)}, the provider has no newer bar")
    days = refresh_days(spec, fresh, midnight_grace=settings.midnight_grace, catch_up_days=settings.catch_up_days)
    why = "market open" if fresh.market_open else f"market closed, last bar {_ts(fresh.last_bar)} short of the close"
    return RefreshPlan(spec, fresh, days, why)


def plan_priority_refresh(
    specs: Sequence[SymbolSpec], store: CandleStore, instance: DagsterInstance, at: pd.Timestamp,
    settings: OperationsSettings,
) -> list[RefreshPlan]:
    return [plan_refresh(spec, store, instance, at, settings, Purpose.PRIORITY_REFRESH) for spec in specs]


def fetches_from_api(specs: Sequence[SymbolSpec], timeframes: Sequence[Timeframe]) -> bool:
    """Whether a run of these timeframes of `specs` calls the API (and so needs the key).

    A run that only derives bars (normally W1, resampled from stored base bars) does not: Dagster
    asks for the `massive` resource's key only when a selected asset uses the resource.
    """
    return any(tf in spec.timeframes and spec.timeframe_source(tf) != "derived" for spec in specs for tf in timeframes)


def tick_time(context: ScheduleEvaluationContext, settings: OperationsSettings) -> pd.Timestamp:
    when = context.scheduled_execution_time
    return settings.now() if when is None else pd.Timestamp(when).tz_convert("UTC")


def _requests_for_job(
    context: ScheduleEvaluationContext,
    job_name: str,
    specs: Sequence[SymbolSpec],
    weekly: bool,
    store: CandleStore,
    settings: OperationsSettings,
) -> list[RunRequest] | SkipReason:
    needs_key = fetches_from_api(specs, [Timeframe.W1]) if weekly else True  # the daily run fetches the base
    if needs_key and (no_key := settings.api_key_skip_reason()) is not None:
        # Binance's public klines need no key: its symbols are refreshed all the same
        specs = [s for s in specs if s.provider is not Provider.MASSIVE]
        if not specs:
            return SkipReason(no_key)
    at = tick_time(context, settings)
    plans = plan_priority_refresh(specs, store, context.instance, at, settings)
    pending = pending_runs(context.instance, Purpose.PRIORITY_REFRESH, job_names=[job_name])
    requests: list[RunRequest] = []
    notes: list[str] = []
    for plan in plans:
        symbol = plan.spec.symbol
        running = pending.get(pending_key(job_name, symbol))
        if plan.days is None:
            notes.append(f"{symbol}: {plan.reason}")
        elif running is not None:
            notes.append(f"{symbol}: run {running[:8]} from an earlier tick is still in progress")
        else:
            first, last = plan.days
            tags = {DAGSTER_PRIORITY_TAG: CRITICAL_RUN_PRIORITY, DAGSTER_MAX_RETRIES_TAG: CRITICAL_RUN_RETRIES,
                    **settings.runtime_tags(Purpose.PRIORITY_REFRESH)}
            if weekly:
                first, last = weeks_covering(first, last)
                requests.append(candle_run_request(
                    job_name=job_name, keys=[candle_key(symbol, Timeframe.W1)], first=first, last=last,
                    purpose=Purpose.PRIORITY_REFRESH, requested_at=at, symbol=symbol, tags=tags,
                    run_config=settings.run_config(Purpose.PRIORITY_REFRESH),
                ))
            else:
                requests.append(daily_run_request(plan.spec, first, last, Purpose.PRIORITY_REFRESH, at, tags,
                                                  run_config=settings.run_config(Purpose.PRIORITY_REFRESH)))
            notes.append(f"{symbol}: {first}..{last} ({plan.reason})")
    context.log.info(f"priority refresh {job_name} at {iso_minute(at)}: " + "; ".join(notes))
    return requests or SkipReason(f"nothing to refresh at {iso_minute(at)}: " + "; ".join(notes))


def _priority_schedule(job_name: str, specs: list[SymbolSpec], weekly: bool, settings: OperationsSettings
                       ) -> ScheduleDefinition:
    symbols = ", ".join(s.symbol for s in specs)
    what = "the current week's W1 bar" if weekly else "today's base bars and the timeframes derived from them"

    @schedule(
        name=f"priority_refresh_{job_name.removeprefix('candles_')}",
        cron_schedule=settings.priority_cron,
        job_name=job_name,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.PRIORITY_REFRESH.value},
        description=f"Every 5 minutes: {what} of the critical symbols ({symbols}), from the limiter's "
                    "critical reserve; a symbol whose previous run is still in progress is skipped.",
    )
    def _refresh(context: ScheduleEvaluationContext, candle_store: CandleStoreResource):
        return _requests_for_job(context, job_name, specs, weekly, candle_store.store, settings)

    return _refresh


def build_priority_schedules(catalog: Catalog, settings: OperationsSettings) -> list[ScheduleDefinition]:
    daily: dict[str, list[SymbolSpec]] = defaultdict(list)
    weekly: dict[str, list[SymbolSpec]] = defaultdict(list)
    for spec in catalog.critical():
        if daily_timeframes(spec):
            daily[job_name_for(spec, Timeframe.D1)].append(spec)
        if Timeframe.W1 in spec.timeframes:
            weekly[job_name_for(spec, Timeframe.W1)].append(spec)
    return [
        *(_priority_schedule(job, specs, False, settings) for job, specs in sorted(daily.items())),
        *(_priority_schedule(job, specs, True, settings) for job, specs in sorted(weekly.items())),
    ]
