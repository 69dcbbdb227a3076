"""`GET /gaps` and `GET /revisions`: recorded runs of missing bars, and the provider's corrections."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query

from massive_pipeline.service import params
from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.records import frame_records
from massive_pipeline.store.schema import GAP_STATUSES

GAP_COLUMNS = [
    "id",
    "symbol",
    "timeframe",
    "gap_start",
    "gap_end",
    "candles_missing",
    "status",
    "attempts",
    "detected_at",
    "filled_at",
]
MAX_REVISIONS = 10_000

GapStatus = StrEnum("GapStatus", {s.upper(): s for s in GAP_STATUSES})

SymbolFilter = Annotated[
    list[str] | None, Query(description="Symbols (repeat or comma-separate; default all)")
]
TimeframeFilter = Annotated[
    list[str] | None, Query(description="Timeframes (repeat or comma-separate; default all)")
]


def _filters(
    context: ServiceContext, symbol: list[str] | None, timeframe: list[str] | None
) -> tuple[list[str], list[str]]:
    symbols = [s.symbol for s in params.symbol_specs(context.catalog, symbol)]
    return symbols, [tf.value for tf in params.timeframes(timeframe)]


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["quality"])

    @api.get("/gaps", summary="Recorded gaps (runs of missing bars inside trading sessions) and their status")
    def get_gaps(
        symbol: SymbolFilter = None,
        timeframe: TimeframeFilter = None,
        status: Annotated[GapStatus | None, Query(description="Only gaps with this status")] = None,
    ) -> dict[str, Any]:
        symbols, timeframes = _filters(context, symbol, timeframe)
        gaps = context.store().gaps(status=None if status is None else status.value)
        if symbols:
            gaps = gaps[gaps["symbol"].isin(symbols)]
        if timeframes:
            gaps = gaps[gaps["timeframe"].isin(timeframes)]
        counts = {str(k): int(v) for k, v in gaps["status"].value_counts().items()}
        return {"count": len(gaps), "by_status": counts, "gaps": frame_records(gaps[GAP_COLUMNS])}

    @api.get(
        "/revisions", summary="Stored bars the provider changed on a later fetch, with old and new OHLCV"
    )
    def get_revisions(
        symbol: SymbolFilter = None,
        timeframe: TimeframeFilter = None,
        since: Annotated[
            str | None,
            Query(description="Detected at or after: a UTC day or ISO 8601 timestamp", max_length=64),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_REVISIONS, description="The newest this many")] = 200,
    ) -> dict[str, Any]:
        symbols, timeframes = _filters(context, symbol, timeframe)
        frame = context.store().revisions(
            symbols or None, timeframes or None, params.optional_instant(since, "since")
        )
        shown = frame.tail(limit)
        return {"count": len(frame), "shown": len(shown), "revisions": frame_records(shown)}

    return api
