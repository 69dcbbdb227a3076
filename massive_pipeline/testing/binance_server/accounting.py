"""What the bundled Binance server was asked, and the request weight it counted per minute.

Binance counts an IP's weight per minute of its own clock and reports the running total in
`X-MBX-USED-WEIGHT-1M` on every answer; tests compare that count, and the request log, with what
the pipeline's limiter recorded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Any

MINUTE_MS = 60_000


@dataclass(frozen=True)
class KlineRequest:
    """One logged API request; `time_ms` is the server clock at arrival."""

    time_ms: int
    path: str
    symbol: str | None
    interval: str | None
    start_time: int | None
    end_time: int | None
    limit: int | None
    weight: int
    status: int
    used_weight: int
    klines: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self) -> None:
        self._records: list[KlineRequest] = []
        self._lock = threading.Lock()

    def append(self, record: KlineRequest) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self, path: str | None = None) -> list[KlineRequest]:
        with self._lock:
            return [r for r in self._records if path is None or r.path == path]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class WeightMeter:
    """Weight per server-clock minute; with `limit` set, a request that would pass it is refused."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"weight limit must be a positive integer or None, got {limit!r}")
        self.limit = limit
        self._used: dict[int, int] = {}
        self._peak = 0
        self._lock = threading.Lock()

    def used(self, now_ms: int) -> int:
        with self._lock:
            return self._used.get(now_ms // MINUTE_MS, 0)

    def charge(self, weight: int, now_ms: int) -> tuple[bool, int]:
        """(admitted, used weight this minute after the decision)."""
        minute = now_ms // MINUTE_MS
        with self._lock:
            used = self._used.get(minute, 0)
            if self.limit is not None and used + weight > self.limit:
                return False, used
            self._used = {minute: used + weight}  # only the current minute counts
            self._peak = max(self._peak, used + weight)
            return True, used + weight

    def max_used(self) -> int:
        """The most weight any one minute has counted since the last reset."""
        with self._lock:
            return self._peak

    def reset(self) -> None:
        with self._lock:
            self._used.clear()
            self._peak = 0


def retry_after(seconds: float) -> str:
    """Whole seconds, rounded up and at least 1."""
    return str(max(1, math.ceil(seconds))) if math.isfinite(seconds) else "60"
