"""Massive (formerly Polygon.io) REST access: the HTTP client, its typed errors, the provider seam.

Knows HTTP and the API's shapes, nothing of Dagster; a resource wraps `MassiveClient` and passes
the shared rate limiter in as `acquire`.
"""

from massive_pipeline.massive.client import DEFAULT_BASE_URL, MassiveClient
from massive_pipeline.massive.errors import (
    MassiveAuthError,
    MassiveConnectionError,
    MassiveError,
    MassiveNotEntitledError,
    MassiveNotFoundError,
    MassivePaginationError,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
    MassiveTimeoutError,
)
from massive_pipeline.massive.models import (
    BAR_COLUMNS,
    FETCHED_COLUMNS,
    PROBLEM_COLUMN,
    BarStream,
    ClientStats,
    FetchResult,
    Snapshot,
    empty_bars,
)
from massive_pipeline.massive.provider import BarProvider, MassiveProvider
from massive_pipeline.massive.redact import Redactor, redact

__all__ = [
    "DEFAULT_BASE_URL",
    "BAR_COLUMNS",
    "FETCHED_COLUMNS",
    "BarProvider",
    "ClientStats",
    "BarStream",
    "FetchResult",
    "MassiveAuthError",
    "MassiveClient",
    "MassiveConnectionError",
    "MassiveError",
    "MassiveNotEntitledError",
    "MassiveNotFoundError",
    "MassivePaginationError",
    "MassiveProvider",
    "MassiveRateLimitError",
    "MassiveResponseError",
    "MassiveServerError",
    "MassiveTimeoutError",
    "PROBLEM_COLUMN",
    "Redactor",
    "Snapshot",
    "empty_bars",
    "redact",
]
