"""`POST /sync`: a candle backfill handed to the Dagster instance; answers its id."""

from __future__ import annotations

from fastapi import APIRouter

from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.sync import SyncAnswer, SyncRequest, submit_sync


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.post(
        "/sync",
        status_code=202,
        response_model=SyncAnswer,
        summary="Queue a backfill of a symbol's timeframes over UTC days start..end (inclusive)",
        responses={202: {"description": "Handed to the Dagster daemon, which runs it under the run queue"}},
    )
    def post_sync(request: SyncRequest) -> dict:
        return submit_sync(context, request)

    return api
