"""`POST /sync`: ask the pipeline to (re)fetch a symbol's candles over a span of days.

The service runs nothing itself: it hands one asset backfill to the Dagster instance
(`candles/backfill_submission.py`, what `backfill --submit` and the UI's *Launch backfill* add),
so the daemon runs it under the run queue, the `dagster/backfill` tag limit and the `massive_api`
pool, and the UI lists it. Its runs carry `massive/purpose=service_sync`: ordinary work, outside
the critical reserve that only the priority refresh and the snapshots may use, so a platform
asking for a year of history cannot starve the 5-minute refresh.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from massive_pipeline.candles.backfill_submission import (
    DAEMON_HEARTBEAT_FRESH_SECONDS,
    SubmittedBackfill,
    backfill_daemon_heartbeat_age,
    submit_candle_backfill,
)
from massive_pipeline.candles.partitions import PartitionRangeError
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.settings import PURPOSE_TAG
from massive_pipeline.service import params
from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.errors import BadParameter

SYNC_PURPOSE = "service_sync"
LAUNCHED_BY_TAG = "massive/launched_by"
# a backfill the UI would show without complaint; longer spans are several requests
MAX_SYNC_DAYS = 3660


class SyncRequest(BaseModel):
    """The body of `POST /sync`."""

    symbol: str = Field(description="A catalog symbol, e.g. EURUSD", examples=["EURUSD"], max_length=64)
    timeframes: list[str] | str = Field(
        default="all",
        description='Timeframes to sync: a list (["M1", "H1"]), a comma-separated string, or "all"',
        examples=[["M1", "H1"]],
    )
    start: str = Field(
        description="First UTC day, YYYY-MM-DD (inclusive)", examples=["2026-10-01"], max_length=64
    )
    end: str = Field(
        description="Last UTC day, YYYY-MM-DD (inclusive, like Dagster partition ranges)",
        examples=["2026-10-07"],
        max_length=64,
    )


class SyncAnswer(BaseModel):
    backfill_id: str
    title: str
    ranges: list[dict[str, str]]
    expected_runs: int
    tags: dict[str, str]
    ui_path: str
    daemon_running: bool


def sync_timeframes(value: list[str] | str) -> list[Timeframe]:
    texts = [value] if isinstance(value, str) else value
    if any(t.strip().lower() == "all" for t in texts):
        return list(Timeframe)
    chosen = params.timeframes(texts, "timeframes")
    if not chosen:
        raise BadParameter("timeframes", 'name at least one timeframe, or "all"')
    return chosen


def submit_sync(context: ServiceContext, request: SyncRequest) -> dict[str, Any]:
    spec = params.symbol_spec(context.catalog, request.symbol)
    timeframes = sync_timeframes(request.timeframes)
    start, end = params.day(request.start, "start"), params.day(request.end, "end")
    if end < start:
        raise BadParameter("end", f"{end} is before start {start}")
    if (end - start).days >= MAX_SYNC_DAYS:
        raise BadParameter("end", f"{start}..{end} spans more than {MAX_SYNC_DAYS} days; ask in parts")
    if end > dt.datetime.now(dt.UTC).date():
        raise BadParameter("end", f"{end} is in the future")
    tags = {PURPOSE_TAG: SYNC_PURPOSE, LAUNCHED_BY_TAG: "service"}
    with context.submit_lock:
        defs, instance = context.definitions(), context.instance()
        try:
            submitted = submit_candle_backfill(
                defs,
                instance,
                [spec],
                timeframes,
                start,
                end,
                tags=tags,
                origin="the data service (`POST /sync`)",
                title_prefix="Service sync",
            )
        except PartitionRangeError as exc:
            raise BadParameter("start", str(exc)) from None
        heartbeat = backfill_daemon_heartbeat_age(instance)
    return answer(submitted, heartbeat)


def answer(submitted: SubmittedBackfill, heartbeat_age: float | None) -> dict[str, Any]:
    return {
        "backfill_id": submitted.backfill_id,
        "title": submitted.title,
        "ranges": [
            {"asset": r.key.to_user_string(), "first": r.first, "last": r.last} for r in submitted.ranges
        ],
        "expected_runs": submitted.expected_runs,
        "tags": dict(submitted.tags),
        "ui_path": f"/runs/b/{submitted.backfill_id}",
        "daemon_running": heartbeat_age is not None and heartbeat_age <= DAEMON_HEARTBEAT_FRESH_SECONDS,
    }
