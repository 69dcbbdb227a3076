"""The data service: a read-mostly HTTP API over the candle store, for the rest of a trading platform.

`create_app(ServiceConfig)` builds the FastAPI application (`app.py`); `massive-pipeline serve`
(`cli/serve.py`) runs it under uvicorn. The service reads the store, the catalog and the Dagster
instance it is given, and writes only one thing: `POST /sync` hands a candle backfill to the
instance, so the daemon runs it under the same queue, pools and rate limit as every other run.
"""

from massive_pipeline.service.app import create_app
from massive_pipeline.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]
