"""The bundled Binance server's clock: the wall clock, a fixed instant, or a faster one.

Which kline is still forming, and which minute a request's weight counts in, follow this clock,
so a test pins it (`speed=0`) to get the same answer on any day, or runs it faster than real time
(`speed=60`: a minute a second) so a kline stream closes klines without waiting minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pandas as pd

from massive_pipeline.core.timeutil import to_utc


class ServerClock:
    """`now = start + (wall - wall_at_start) * speed`, in Unix ms; `start` None means the wall clock."""

    def __init__(self, start: pd.Timestamp | str | None = None, speed: float = 1.0,
                 wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self.set(start, speed)

    def set(self, start: pd.Timestamp | str | None = None, speed: float = 1.0) -> None:
        """Restart the clock at `start` (None: now) running at `speed` (0 freezes it)."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0 <= speed <= 1_000_000:
            raise ValueError(f"clock speed must be a number from 0 to 1000000, got {speed!r}")
        wall_ms = self._wall() * 1000
        origin = wall_ms if start is None else to_utc(start, "now").value / 1_000_000
        with self._lock:
            self._origin_ms, self._wall0_ms, self.speed = origin, wall_ms, float(speed)

    def now_ms(self) -> int:
        with self._lock:
            return int(self._origin_ms + (self._wall() * 1000 - self._wall0_ms) * self.speed)

    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self.now_ms(), unit="ms", tz="UTC")

    def wall_seconds_until(self, server_ms: int) -> float:
        """Real seconds until the clock reads `server_ms` (inf when frozen before it)."""
        ahead = server_ms - self.now_ms()
        if ahead <= 0:
            return 0.0
        return float("inf") if self.speed == 0 else ahead / self.speed / 1000
