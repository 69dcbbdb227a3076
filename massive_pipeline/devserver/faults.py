"""Switchable misbehaviour of the development server.

The reliability of the client, the rate limiter and the assets is only proven against the failures
the real API shows (5xx storms, HTML proxy pages, 429s with and without `Retry-After`, truncated
bodies, corrupt rows, holes the provider cannot fill, a `next_url` that never advances). Each of
them is a field here so that a test can turn exactly one on, by Python or over HTTP
(`POST /_dev/faults` with a JSON object of these fields).

"next N" counters count down on API requests (not on admin requests) and each request consumes at
most one of them, in this order: `throttle_429_next`, `server_errors_next`, `html_504_next`,
`malformed_json_next`, `unexpected_shape_next`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

_COUNTERS = (
    "server_errors_next",
    "html_504_next",
    "throttle_429_next",
    "malformed_json_next",
    "unexpected_shape_next",
)


class FaultConfigError(ValueError):
    """A fault field that does not exist or a value it cannot take."""


@dataclass
class FaultConfig:
    """All faults off by default.

    `retry_after_seconds` is the delay announced during a `throttle_429_next` storm. HTTP's
    `Retry-After` carries whole seconds, so a fractional value is sent rounded up (0.2 -> "1",
    0 -> "0"); `None` sends "1". No header at all is sent when `send_retry_after` is False, which
    also applies to the 429s of the server's own rate limit.
    """

    server_errors_next: int = 0
    html_504_next: int = 0
    throttle_429_next: int = 0
    retry_after_seconds: float | None = None
    send_retry_after: bool = True
    malformed_json_next: int = 0
    unexpected_shape_next: int = 0
    bad_rows: list[int] = field(default_factory=list)
    bad_rows_fraction: float = 0.0
    spikes: list[int] = field(default_factory=list)
    holes: list[tuple[int, int]] = field(default_factory=list)
    stuck_next_url: bool = False
    delay_seconds: float = 0.0
    revision: int = 0
    not_entitled: bool = False

    def update(self, **changes: Any) -> None:
        """Validate every change first, then apply them all, so a bad field changes nothing."""
        clean = {name: _validate(name, value) for name, value in changes.items()}
        for name, value in clean.items():
            setattr(self, name, value)

    def copy(self) -> FaultConfig:
        return dataclasses.replace(
            self, bad_rows=list(self.bad_rows), spikes=list(self.spikes), holes=list(self.holes)
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["holes"] = [list(h) for h in self.holes]
        return out

    def retry_after_header(self) -> str:
        if self.retry_after_seconds is None:
            return "1"
        return str(math.ceil(self.retry_after_seconds))


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FaultConfig))


def _validate(name: str, value: Any) -> Any:
    if name not in FIELD_NAMES:
        raise FaultConfigError(f"unknown fault {name!r}; known faults: {', '.join(FIELD_NAMES)}")
    if name in _COUNTERS or name == "revision":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise FaultConfigError(f"fault {name} must be a non-negative integer, got {value!r}")
        return int(value)
    if name in ("send_retry_after", "stuck_next_url", "not_entitled"):
        if not isinstance(value, bool):
            raise FaultConfigError(f"fault {name} must be true or false, got {value!r}")
        return value
    if name == "retry_after_seconds":
        if value is None:
            return None
        return _non_negative_number(name, value)
    if name == "delay_seconds":
        return _non_negative_number(name, value)
    if name == "bad_rows_fraction":
        number = _non_negative_number(name, value)
        if number > 1:
            raise FaultConfigError(f"fault {name} must be between 0 and 1, got {value!r}")
        return number
    if name in ("bad_rows", "spikes"):
        return [_ms(name, v) for v in _sequence(name, value)]
    # holes
    holes = []
    for item in _sequence(name, value):
        pair = _sequence(name, item)
        if len(pair) != 2:
            raise FaultConfigError(f"fault holes takes [start_ms, end_ms) pairs, got {item!r}")
        start, end = _ms(name, pair[0]), _ms(name, pair[1])
        if end <= start:
            raise FaultConfigError(f"fault holes: end must be after start, got {item!r}")
        holes.append((start, end))
    return holes


def _non_negative_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise FaultConfigError(f"fault {name} must be a non-negative number, got {value!r}")
    return float(value)


def _sequence(name: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise FaultConfigError(f"fault {name} must be a list, got {value!r}")
    return list(value)


def _ms(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FaultConfigError(f"fault {name} takes Unix milliseconds as integers, got {value!r}")
    return int(value)
