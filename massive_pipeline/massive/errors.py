"""Typed failures of the Massive client.

Callers decide by type: an auth error stops a whole run (every request would fail the same way),
a rate-limit or server error is worth another run later, a response or pagination error points at
the provider's data and is recorded against the partition. Every message names the request
(method and path, never the query string or the key) so a failed run says what it asked for.
"""

from __future__ import annotations


class MassiveError(Exception):
    """Base of every error the client raises; `status` is the last HTTP status seen, if any."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.api_message = api_message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MassiveAuthError(MassiveError):
    """401 (key missing or unknown) or 403 (plan not entitled); retrying cannot help."""


class MassiveNotEntitledError(MassiveAuthError):
    """403 / `NOT_AUTHORIZED`: the key is fine but its plan does not cover this endpoint.

    Waiting or retrying cannot help until the plan changes, so callers stop asking (the snapshot
    schedule re-checks once a UTC day) instead of spending their budget on it.
    """


class MassiveRateLimitError(MassiveError):
    """Still answered 429 after the allowed number of throttled retries."""


class MassiveServerError(MassiveError):
    """5xx answers or broken connections outlasted the retries."""


class MassiveConnectionError(MassiveServerError):
    """The server could not be reached at all (refused, reset, DNS) after the retries."""


class MassiveTimeoutError(MassiveError):
    """Every attempt hit the client's explicit timeout."""


class MassiveResponseError(MassiveError):
    """The answer is not what the API promises: not JSON, wrong shape, a bad row, or 404."""


class MassiveNotFoundError(MassiveResponseError):
    """404: the path (ticker, endpoint) does not exist for this key."""


class MassivePaginationError(MassiveError):
    """`next_url` did not advance (or never ended); nothing of the partial answer is returned."""


__all__ = [
    "MassiveAuthError",
    "MassiveConnectionError",
    "MassiveError",
    "MassiveNotEntitledError",
    "MassiveNotFoundError",
    "MassivePaginationError",
    "MassiveRateLimitError",
    "MassiveResponseError",
    "MassiveServerError",
    "MassiveTimeoutError",
]
