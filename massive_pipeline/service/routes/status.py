"""`GET /status`: what `massive-pipeline status` shows, as JSON (`operations.status.current_status`).

Unlike the command it writes nothing back to `sync_status`: a GET stays a read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from massive_pipeline.operations.status import current_status
from massive_pipeline.service import params
from massive_pipeline.service.context import ServiceContext


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get(
        "/status", summary="Per symbol: last bar and age, sync status, queue position, open gaps; the budget"
    )
    def get_status(
        symbol: Annotated[
            list[str] | None, Query(description="Symbols (repeat or comma-separate; default all)")
        ] = None,
        all_timeframes: Annotated[
            bool, Query(description="Every timeframe instead of each symbol's base one")
        ] = False,
    ) -> dict[str, Any]:
        specs = params.symbol_specs(context.catalog, symbol) or list(context.catalog)
        report = current_status(
            context.catalog, context.store(), context.instance(), specs=specs, massive=context.config.massive
        )
        base = None if all_timeframes else {s.symbol: s.base_timeframe.value for s in specs}
        return {"store": context.store_display(), **report.as_json(base)}

    return api
