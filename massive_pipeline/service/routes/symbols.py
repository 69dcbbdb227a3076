"""`GET /symbols` and `GET /symbols/{symbol}`: the catalog and what the store holds of each entry."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path

from massive_pipeline.service import params
from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.symbols import symbol_view


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["catalog"])

    @api.get("/symbols", summary="Every catalog symbol with its series: rows, first/last bar, freshness")
    def list_symbols() -> dict[str, Any]:
        counts = context.store().row_counts()
        now = pd.Timestamp.now(tz="UTC")
        return {
            "catalog": context.catalog.source,
            "at": now.isoformat().replace("+00:00", "Z"),
            "symbols": [symbol_view(spec, counts, now) for spec in context.catalog],
        }

    @api.get(
        "/symbols/{symbol}", summary="One catalog entry with its series: rows, first/last bar, freshness"
    )
    def get_symbol(
        symbol: Annotated[
            str, Path(description="Catalog symbol, e.g. EURUSD", max_length=64, examples=["EURUSD"])
        ],
    ) -> dict[str, Any]:
        spec = params.symbol_spec(context.catalog, symbol)
        now = pd.Timestamp.now(tz="UTC")
        return {
            "at": now.isoformat().replace("+00:00", "Z"),
            **symbol_view(spec, context.store().row_counts(), now),
        }

    return api
