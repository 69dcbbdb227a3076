"""The reconnect schedule: exponential backoff with jitter, reset once a connection has worked.

Exponential, so a stream endpoint that is down for an hour is asked a few dozen times rather
than thousands; capped, so the stream is back within `maximum` seconds of the endpoint; jittered,
so many consumers cut off at the same instant (a Binance maintenance, a network blip) do not all
come back in the same millisecond. The random source is injected so the schedule can be tested.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before reconnect attempt n (1, 2, …): `min(maximum, initial × factor^(n-1))`, of which
    the fraction `jitter` is random: delay × (1 − jitter × u), u uniform in [0, 1)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if not self.initial > 0 or not self.maximum >= self.initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {self.initial!r} and {self.maximum!r}")
        if not self.factor >= 1:
            raise ValueError(f"backoff factor must be at least 1, got {self.factor!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be between 0 and 1, got {self.jitter!r}")

    def ceiling(self, attempt: int) -> float:
        """The delay of attempt n without jitter."""
        if attempt < 1:
            raise ValueError(f"attempt must be at least 1, got {attempt!r}")
        return min(self.maximum, self.initial * self.factor ** min(attempt - 1, 64))

    def delay(self, attempt: int) -> float:
        return self.ceiling(attempt) * (1.0 - self.jitter * self.random())
