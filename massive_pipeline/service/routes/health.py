"""`GET /health`: the store, the Dagster instance and the limiter, each with its state; open without a token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.health import health


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get(
        "/health",
        summary="200 when the store, the Dagster instance and the limiter answer; 503 otherwise",
        responses={503: {"description": "At least one check is unavailable; each says why"}},
    )
    def get_health() -> JSONResponse:
        healthy, body = health(context)
        return JSONResponse(body, status_code=200 if healthy else 503)

    return api
