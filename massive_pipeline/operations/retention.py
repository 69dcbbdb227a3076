"""Weekly retention: delete candles older than each timeframe's limit, in batches, and say what went.

Limits are per timeframe (run config of `retention_job`; defaults from `MASSIVE_RETENTION_DAYS`,
else two years of M1 and everything else kept). Each timeframe goes through `CandleStore.retire`:
on PostgreSQL the months wholly past the limit are dropped as whole partitions (store/partitions.py),
and what is left below the cutoff is deleted oldest first in short transactions of `batch_size`
rows (all of it on SQLite), so a large cleanup never holds a long lock over the table the
5-minute refresh writes to. Which series hold bars past the limit, and how many rows each holds,
comes from the store's month ledger (`store/month_rows.py`), never from a scan of the candles.
What was removed is recorded three ways: the run's
log, the op's output metadata (a table per series), and an observation on each candle asset
trimmed, so the asset's own page shows when its history was shortened and to where.
"""

import datetime as dt
import math
from typing import Any

import pandas as pd
from dagster import (
    AssetObservation,
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunConfig,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    job,
    op,
    schedule,
)
from pydantic import Field

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import Catalog
from massive_pipeline.core.timeframes import Timeframe, UnknownTimeframeError, parse_timeframe
from massive_pipeline.operations.refresh import tick_time
from massive_pipeline.operations.runs import iso_minute
from massive_pipeline.operations.settings import (
    DEFAULT_RETENTION_DAYS,
    PURPOSE_TAG,
    REQUESTED_AT_TAG,
    OperationsSettings,
    Purpose,
)
from massive_pipeline.resources.candle_store import CandleStoreResource

RETENTION_JOB = "retention_job"
RETENTION_OP = "apply_retention"


class RetentionConfig(Config):
    keep_days: dict[str, int] = Field(
        default_factory=lambda: {tf.value: d for tf, d in DEFAULT_RETENTION_DAYS.items()},
        description="Days of history kept per timeframe, e.g. {'M1': 730}; a timeframe not listed keeps everything.",
    )
    batch_size: int = Field(default=50_000, description="Rows deleted per transaction.")
    as_of: str | None = Field(
        default=None, description="UTC day (YYYY-MM-DD) the limits count back from; default: today."
    )


def parse_limits(keep_days: dict[str, int]) -> dict[Timeframe, int]:
    """Validated limits; a bad entry fails with the entry named."""
    out: dict[Timeframe, int] = {}
    for name, days in keep_days.items():
        try:
            tf = parse_timeframe(name)
        except UnknownTimeframeError as exc:
            raise ValueError(f"retention keep_days: {exc}") from None
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"retention keep_days[{name!r}] must be a whole number of days ≥ 1, got {days!r}")
        out[tf] = days
    return out


def retention_cutoff(as_of: dt.date, days: int) -> pd.Timestamp:
    """Bars starting before this UTC midnight are deleted: whole days, so whole partitions go."""
    return pd.Timestamp(as_of - dt.timedelta(days=days), tz="UTC")


def _as_of(text: str | None) -> dt.date:
    if text is None:
        return pd.Timestamp.now(tz="UTC").date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"retention as_of must be a date YYYY-MM-DD, got {text!r}") from None


def build_retention_job(catalog: Catalog, settings: OperationsSettings) -> JobDefinition:
    known = {spec.symbol for spec in catalog}

    @op(name=RETENTION_OP, tags={PURPOSE_TAG: Purpose.RETENTION.value})
    def apply_retention(
        context: OpExecutionContext, config: RetentionConfig, candle_store: CandleStoreResource
    ) -> Output[dict[str, Any]]:
        try:
            limits = parse_limits(config.keep_days)
            as_of = _as_of(config.as_of)
        except ValueError as exc:
            raise Failure(description=str(exc)) from None
        if config.batch_size < 1:
            raise Failure(description=f"retention batch_size must be ≥ 1, got {config.batch_size}")
        store = candle_store.store
        rows: list[dict[str, Any]] = []
        # the month ledger, not row_counts(): a few rows per series and month instead of every bar
        # (30-42 s at 45 million bars); a series is a candidate when it holds a month starting
        # before the cutoff, and reported when it lost rows
        ledger = store.rows_by_month()
        for tf in sorted(limits, key=lambda t: t.minutes):
            cutoff = retention_cutoff(as_of, limits[tf])
            mine = ledger[ledger["timeframe"] == tf.value]
            candidates = sorted(set(mine.loc[mine["month"] < cutoff, "symbol"]))
            if not candidates:
                continue
            held = mine.groupby("symbol")["rows"].sum()
            removed = store.retire(tf, cutoff, candidates, batch_size=config.batch_size)
            for symbol in candidates:
                deleted = removed.get(symbol, 0)
                if not deleted:
                    continue
                left = int(held.get(symbol, 0)) - deleted
                rows.append({"symbol": symbol, "timeframe": tf.value, "cutoff": cutoff.isoformat(),
                             "deleted": deleted, "batches": math.ceil(deleted / config.batch_size),
                             "rows_left": left})
                context.log.info(f"retention {symbol} {tf.value}: deleted {deleted} bars before "
                                 f"{cutoff:%Y-%m-%d} ({limits[tf]} days kept), {left} left")
                if symbol in known:
                    context.log_event(AssetObservation(
                        asset_key=candle_key(symbol, tf),
                        metadata={"retention_deleted_rows": deleted, "retention_cutoff": cutoff.isoformat(),
                                  "rows_left": left},
                    ))
        total = sum(r["deleted"] for r in rows)
        table = ["| symbol | timeframe | cutoff | deleted | batches | rows left |", "|---|---|---|---|---|---|"]
        table += [f"| {r['symbol']} | {r['timeframe']} | {r['cutoff'][:10]} | {r['deleted']} | {r['batches']} | "
                  f"{r['rows_left']} |" for r in rows]
        limits_text = ", ".join(f"{tf.value}={d}d" for tf, d in sorted(limits.items(), key=lambda kv: kv[0].minutes))
        context.log.info(f"retention as of {as_of}: {total} bars deleted from {len(rows)} series (limits: "
                         f"{limits_text or 'none'})")
        return Output(
            {"as_of": as_of.isoformat(), "deleted": total, "series": rows},
            metadata={
                "rows_deleted": total,
                "series_trimmed": len(rows),
                "limits": limits_text or "none (everything kept)",
                "as_of": as_of.isoformat(),
                "deleted_by_series": MetadataValue.md("\n".join(table) if rows else "_nothing past its limit_"),
            },
        )

    default = RetentionConfig(keep_days={tf.value: d for tf, d in settings.retention_days.items()})

    @job(name=RETENTION_JOB, config=RunConfig(ops={RETENTION_OP: default}),
         tags={PURPOSE_TAG: Purpose.RETENTION.value},
         description="Delete candles older than each timeframe's retention limit, in batches.")
    def retention_job() -> None:
        apply_retention()

    return retention_job


def build_retention_schedule(settings: OperationsSettings) -> ScheduleDefinition:
    keep = {tf.value: d for tf, d in settings.retention_days.items()}

    @schedule(
        name="weekly_retention",
        cron_schedule=settings.retention_cron,
        job_name=RETENTION_JOB,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        description="Sundays 03:00 UTC: delete candles past their timeframe's retention limit.",
    )
    def _retention(context: ScheduleEvaluationContext) -> RunRequest:
        at = tick_time(context, settings)
        stamp = iso_minute(at)
        return RunRequest(
            run_key=f"{Purpose.RETENTION.value}:{stamp}",
            run_config=RunConfig(ops={RETENTION_OP: RetentionConfig(keep_days=keep, as_of=at.date().isoformat())}),
            tags={PURPOSE_TAG: Purpose.RETENTION.value, REQUESTED_AT_TAG: stamp,
                  **settings.runtime_tags(Purpose.RETENTION)},
        )

    return _retention
