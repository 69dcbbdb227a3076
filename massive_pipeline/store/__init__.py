"""The candle store: OHLCV bars, sync status, rejects, gaps and snapshots in SQLite or PostgreSQL.

Knows SQL and nothing of HTTP or Dagster; assets and the CLI are thin glue over `CandleStore`.
"""

from massive_pipeline.store.candle_store import CandleStore, WriteResult
from massive_pipeline.store.engine import ENV_VAR, mask_url, resolve_database_url
from massive_pipeline.store.errors import StoreConfigError, StoreError, StoreUnavailableError

__all__ = [
    "ENV_VAR",
    "CandleStore",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "WriteResult",
    "mask_url",
    "resolve_database_url",
]
