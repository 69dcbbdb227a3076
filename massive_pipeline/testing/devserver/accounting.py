"""The server's own account of what it was asked and what it let through.

Tests prove "never more than N requests in any window" against these numbers rather than the
client's, so the limiter and the log share one clock reading per request: the time a request is
admitted is the time it is logged with.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Statuses of requests the server refused before doing any work for them.
_NOT_ADMITTED = (401, 429)


@dataclass(frozen=True)
class RequestRecord:
    time: float  # time.time() at arrival (for admitted requests: at admission)
    method: str
    path: str  # without the query string, so never the API key
    kind: str  # "aggs" | "snapshot" | "unknown"
    status: int
    page: int  # 1 for a first request, n for the n-th page followed through next_url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Thread-safe append-only list of API requests."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def count(self, kind: str | None = None) -> int:
        return sum(1 for r in self.snapshot() if kind is None or r.kind == kind)

    def rejected_429(self) -> int:
        return sum(1 for r in self.snapshot() if r.status == 429)

    def max_in_window(self, window_seconds: float) -> int:
        """Most admitted requests (neither 401 nor 429) in any window (t - window, t]."""
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds!r}")
        times = np.sort([r.time for r in self.snapshot() if r.status not in _NOT_ADMITTED])
        if len(times) == 0:
            return 0
        right = np.searchsorted(times, times, side="right")
        left = np.searchsorted(times, times - window_seconds, side="right")
        return int((right - left).max())


class SlidingWindowLimiter:
    """At most `limit` admissions in any window of `window_seconds` (exact, thread-safe)."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._admitted: deque[float] = deque()
        self._lock = threading.Lock()

    def try_admit(self) -> tuple[float | None, float]:
        """(admission time, 0) when admitted, else (None, seconds until a slot frees up)."""
        with self._lock:
            now = time.time()
            horizon = now - self.window_seconds
            while self._admitted and self._admitted[0] <= horizon:
                self._admitted.popleft()
            if len(self._admitted) < self.limit:
                self._admitted.append(now)
                return now, 0.0
            return None, self._admitted[0] - horizon

    def reset(self) -> None:
        with self._lock:
            self._admitted.clear()


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up and at least 1, so that a client honouring it never comes back early."""
    return str(max(1, math.ceil(seconds)))
