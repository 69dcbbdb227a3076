"""Latest quotes of the critical symbols: one universal-snapshot request per refresh.

The `snapshots` asset asks `/v3/snapshot` for all critical tickers at once (the provider falls
back to single-ticker snapshots for what that endpoint does not serve), appends every snapshot to
the `snapshots` table (history is kept), and publishes each on Redis channel
`asset:update:{symbol}` when `MASSIVE_REDIS_URL` is set. The priority refresh requests it every
5 minutes through `snapshots_job`; the request of such a run (tag `massive/purpose: snapshots`)
comes from the limiter's critical reserve, one materialized by hand is ordinary work.

Snapshots are not on every plan (single-ticker forex/crypto snapshots are not on the free
currencies plan). When every snapshot endpoint answers 403 `NOT_AUTHORIZED`, the asset says so
once - an error naming the endpoints and the plan problem, and an `AssetObservation` of `snapshots`
with `entitlement: not_entitled` - and fails without retries. The schedule reads that observation
through the instance and skips with its reason for the rest of that UTC day, so no critical
request is spent every 5 minutes on an answer known in advance; the first tick of the next UTC day
asks again, so an upgraded plan is picked up within a day.
"""

from typing import Any

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    DagsterInstance,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
)

from massive_pipeline.candles.assets import CRITICAL_POOL, lane_op_tags
from massive_pipeline.core.catalog import Catalog, Provider
from massive_pipeline.dagster_compat import UnresolvedAssetJobDefinition
from massive_pipeline.massive.errors import MassiveNotEntitledError
from massive_pipeline.massive.models import Snapshot
from massive_pipeline.operations.publisher import RedisPublisherResource, RedisPublishError
from massive_pipeline.operations.refresh import CRITICAL_RUN_PRIORITY, CRITICAL_RUN_RETRIES, tick_time
from massive_pipeline.operations.runs import iso_minute, pending_runs
from massive_pipeline.operations.settings import (
    DAGSTER_MAX_RETRIES_TAG,
    DAGSTER_PRIORITY_TAG,
    PURPOSE_TAG,
    REQUESTED_AT_TAG,
    OperationsSettings,
    Purpose,
)
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, uses_critical_reserve

SNAPSHOTS_KEY = AssetKey(["snapshots"])
SNAPSHOTS_JOB = "snapshots_job"
EVENT_TYPE = "snapshot"
ENTITLEMENT = "entitlement"
NOT_ENTITLED = "not_entitled"


def snapshot_event(symbol: str, snap: Snapshot) -> dict[str, Any]:
    """The Redis message: what a real-time consumer needs to update a quote, as plain JSON values."""
    return {
        "type": EVENT_TYPE,
        "symbol": symbol,
        "ticker": snap.ticker,
        "bid": snap.bid,
        "ask": snap.ask,
        "spread": snap.spread,
        "last": snap.last,
        "timestamp": snap.timestamp.isoformat(),
        "day_open": snap.day_open,
        "day_high": snap.day_high,
        "day_low": snap.day_low,
        "day_close": snap.day_close,
    }


def _preview(events: list[dict[str, Any]]) -> str:
    cols = ["symbol", "bid", "ask", "spread", "last", "timestamp"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for e in events:
        lines.append("| " + " | ".join("" if e[c] is None else str(e[c]) for c in cols) + " |")
    return "\n".join(lines)


def build_snapshots_asset(catalog: Catalog) -> AssetsDefinition:
    specs = [s for s in catalog.critical() if s.provider is Provider.MASSIVE]  # Binance serves klines only
    by_ticker = {s.ticker: s for s in specs}

    @asset(
        key=SNAPSHOTS_KEY,
        group_name="operations",
        kinds={"massive", "redis"},
        # the critical lane: a snapshot never waits for a slot behind bulk work (README "Lanes")
        pool=CRITICAL_POOL,
        op_tags=lane_op_tags(True),
        tags={"massive/priority": "critical"},
        description="Bid, ask, spread, last price and the day's OHLC of the critical symbols "
                    f"({', '.join(s.symbol for s in specs)}) from one universal-snapshot request; appended to "
                    "the `snapshots` table and published on Redis `asset:update:{symbol}` when configured.",
    )
    def snapshots(
        context: AssetExecutionContext,
        massive: MassiveResource,
        candle_store: CandleStoreResource,
        redis_publisher: RedisPublisherResource,
    ) -> MaterializeResult:
        with massive.provider(critical=uses_critical_reserve(context.run.tags)) as provider:
            before = provider.client.stats.requests
            try:
                found, errors = provider.snapshots(list(by_ticker))
            except MassiveNotEntitledError as exc:
                requests = provider.client.stats.requests - before
                _record_not_entitled(context, str(exc), requests)
                raise Failure(description=str(exc), metadata={"api_requests": requests, ENTITLEMENT: NOT_ENTITLED},
                              allow_retries=False) from None
            requests = provider.client.stats.requests - before
        if not found:
            raise Failure(
                description="no snapshot for any critical ticker: "
                            + "; ".join(f"{t}: {e}" for t, e in errors.items()),
                metadata={"api_requests": requests},
            )
        store = candle_store.store
        events: list[dict[str, Any]] = []
        for snap in found:
            spec = by_ticker[snap.ticker]
            store.save_snapshot(
                spec.symbol, snap.ticker, quote_ts=snap.timestamp, bid=snap.bid, ask=snap.ask,
                spread=snap.spread, last=snap.last, day_open=snap.day_open, day_high=snap.day_high,
                day_low=snap.day_low, day_close=snap.day_close, day_volume=snap.day_volume,
            )
            events.append(snapshot_event(spec.symbol, snap))
        delivered: dict[str, int] = {}
        publish_error: str | None = None
        if redis_publisher.enabled:
            for event in events:
                try:
                    delivered[event["symbol"]] = redis_publisher.publish(event["symbol"], event) or 0
                except RedisPublishError as exc:
                    publish_error = str(exc)
                    break
        for ticker, error in errors.items():
            context.log.warning(f"snapshot of {ticker} unavailable: {error}")
        metadata: dict[str, Any] = {
            ENTITLEMENT: "ok",
            "snapshots_stored": len(events),
            "api_requests": requests,
            "missing": MetadataValue.json(errors) if errors else "none",
            "published": (MetadataValue.json(delivered) if redis_publisher.enabled else "off (MASSIVE_REDIS_URL unset)"),
            "preview": MetadataValue.md(_preview(events)),
        }
        if publish_error is not None:
            raise Failure(description=f"{len(events)} snapshot(s) stored, but {publish_error}", metadata=metadata)
        return MaterializeResult(metadata=metadata)

    return snapshots


def _record_not_entitled(context: AssetExecutionContext, reason: str, requests: int) -> None:
    """Say it once in the run's log and leave the fact where the schedule can read it."""
    checked_at = context.run.tags.get(REQUESTED_AT_TAG) or pd.Timestamp.now(tz="UTC").isoformat()
    context.log.error(f"{reason} The snapshot schedule skips until the next UTC day.")
    context.log_event(AssetObservation(asset_key=SNAPSHOTS_KEY, metadata={
        ENTITLEMENT: NOT_ENTITLED, "reason": reason, "checked_at": checked_at, "api_requests": requests,
    }))


def entitlement_skip_reason(instance: DagsterInstance, at: pd.Timestamp) -> str | None:
    """Why a snapshot tick at `at` should not ask again, or None when it should.

    Skips only when the latest word on the snapshots is a not-entitled observation made the same
    UTC day as `at` (its `checked_at` is the tick time of the run that made it) and no snapshot
    was stored after it.
    """
    observations = instance.fetch_observations(SNAPSHOTS_KEY, limit=1).records
    if not observations:
        return None
    record = observations[0]
    observation = record.asset_observation
    meta = observation.metadata if observation is not None else {}
    if ENTITLEMENT not in meta or meta[ENTITLEMENT].value != NOT_ENTITLED:
        return None
    materializations = instance.fetch_materializations(SNAPSHOTS_KEY, limit=1).records
    if materializations and materializations[0].storage_id > record.storage_id:
        return None
    checked = pd.Timestamp(str(meta["checked_at"].value))
    checked = checked.tz_localize("UTC") if checked.tzinfo is None else checked.tz_convert("UTC")
    if checked.floor("D") != at.tz_convert("UTC").floor("D"):
        return None  # a new UTC day: ask once more, the plan may have been upgraded
    return (f"snapshots not entitled (checked {checked:%Y-%m-%d %H:%M} UTC, asked again after 00:00 UTC): "
            f"{meta['reason'].value}")


def build_snapshots_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job(SNAPSHOTS_JOB, selection=[SNAPSHOTS_KEY],
                            description="The critical symbols' latest quotes (one universal-snapshot request).")


def build_snapshots_schedule(settings: OperationsSettings) -> ScheduleDefinition:
    @schedule(
        name="priority_refresh_snapshots",
        cron_schedule=settings.priority_cron,
        job_name=SNAPSHOTS_JOB,
        execution_timezone="UTC",
        default_status=settings.schedule_status,
        tags={PURPOSE_TAG: Purpose.SNAPSHOTS.value},
        description="Every 5 minutes, with the priority refresh: one snapshot request for all critical symbols.",
    )
    def _snapshots(context: ScheduleEvaluationContext):
        if (no_key := settings.api_key_skip_reason()) is not None:
            return SkipReason(no_key)
        at = tick_time(context, settings)
        running = pending_runs(context.instance, Purpose.SNAPSHOTS, job_names=[SNAPSHOTS_JOB])
        if running:
            run_id = next(iter(running.values()))
            return SkipReason(f"snapshot run {run_id[:8]} from an earlier tick is still in progress")
        not_entitled = entitlement_skip_reason(context.instance, at)
        if not_entitled is not None:
            return SkipReason(not_entitled)
        stamp = iso_minute(at)
        return RunRequest(
            run_key=f"{Purpose.SNAPSHOTS.value}:{stamp}",
            tags={PURPOSE_TAG: Purpose.SNAPSHOTS.value, REQUESTED_AT_TAG: stamp,
                  DAGSTER_PRIORITY_TAG: CRITICAL_RUN_PRIORITY, DAGSTER_MAX_RETRIES_TAG: CRITICAL_RUN_RETRIES,
                  **settings.runtime_tags(Purpose.SNAPSHOTS)},
            run_config=settings.run_config(Purpose.SNAPSHOTS),
        )

    return _snapshots

