"""Building the data service's FastAPI application from a `ServiceConfig`.

`create_app` is the service's composition root: it opens nothing (the context opens the store and
the instance on first use), installs the error handlers, puts every route but `/health` behind the
optional bearer token, and closes the handles when the server shuts down. The OpenAPI document is
FastAPI's own, at `/openapi.json` (pages at `/docs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from massive_pipeline.service.auth import require_token
from massive_pipeline.service.config import ServiceConfig
from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.errors import install_error_handlers
from massive_pipeline.service.routes import candles, health, quality, status, symbols, sync

TITLE = "massive_pipeline data service"
DESCRIPTION = (
    "Read the OHLCV candles the pipeline keeps, the catalog, sync status, gaps and revisions, and ask for a "
    "sync, which is queued in Dagster like any backfill. Times are UTC; ranges are [start, end) for candles "
    'and inclusive days for syncs. Errors are `{"detail": "<one line>"}` (422/400 bad parameter, 404 unknown '
    "symbol, 401 missing or wrong bearer token when the deployment sets MASSIVE_SERVICE_TOKEN, 503 store or "
    "Dagster instance unavailable)."
)
PROTECTED_ROUTERS = (candles, symbols, status, quality, sync)


def create_app(config: ServiceConfig) -> FastAPI:
    context = ServiceContext(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context.close()

    app = FastAPI(title=TITLE, description=DESCRIPTION, version="1", lifespan=lifespan)
    app.state.context = context
    install_error_handlers(app)
    app.include_router(health.router(context))
    guard = [Depends(require_token(config.token))]
    for module in PROTECTED_ROUTERS:
        app.include_router(module.router(context), dependencies=guard)
    return app
