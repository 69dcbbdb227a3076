"""Switchable behaviour of the bundled Binance server, set from Python or `POST /_dev/switches`.

Counters ("next N") count down on klines requests, at most one per request, in this order:
`ban_418_next`, `throttle_429_next`, `server_errors_next`, `malformed_next` (a body cut in half),
`bad_row_next` (one kline's close is the text "abc"). 429 and 418 carry `Retry-After:
retry_after_seconds` unless `send_retry_after` is off.

Prices follow a Massive ticker of the Massive bundled server (`follow`, default `X:<BASE>USD` for
`<BASE>USDT`), times `basis`: BTCUSDT = BTCUSD x basis, bar for bar, the same minutes present. The
klines opening at `divergent_bars` (Unix ms) have their prices scaled by `1 + divergence` on top,
the single wrong bars a cross-provider check must find.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

_COUNTERS = ("ban_418_next", "throttle_429_next", "server_errors_next", "malformed_next", "bad_row_next")


class SwitchError(ValueError):
    """A switch that does not exist, or a value it cannot take."""


@dataclass
class BinanceSwitches:
    ban_418_next: int = 0
    throttle_429_next: int = 0
    server_errors_next: int = 0
    malformed_next: int = 0
    bad_row_next: int = 0
    retry_after_seconds: int = 1
    send_retry_after: bool = True
    basis: float = 1.0
    divergent_bars: list[int] = field(default_factory=list)
    divergence: float = 0.02
    follow: dict[str, str] = field(default_factory=dict)

    def update(self, **changes: Any) -> None:
        """Validate every change, then apply them all: a bad one changes nothing."""
        clean = {name: _validate(name, value) for name, value in changes.items()}
        for name, value in clean.items():
            setattr(self, name, value)

    def copy(self) -> BinanceSwitches:
        return dataclasses.replace(self, divergent_bars=list(self.divergent_bars), follow=dict(self.follow))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BinanceSwitches))


def _validate(name: str, value: Any) -> Any:
    if name not in NAMES:
        raise SwitchError(f"unknown switch {name!r}; known switches: {', '.join(NAMES)}")
    if name in _COUNTERS or name == "retry_after_seconds":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise SwitchError(f"switch {name} must be a non-negative integer, got {value!r}")
        return int(value)
    if name == "send_retry_after":
        if not isinstance(value, bool):
            raise SwitchError(f"switch {name} must be true or false, got {value!r}")
        return value
    if name in ("basis", "divergence"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise SwitchError(f"switch {name} must be a finite number, got {value!r}")
        if name == "basis" and value <= 0:
            raise SwitchError(f"switch basis must be positive, got {value!r}")
        return float(value)
    if name == "divergent_bars":
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise SwitchError(f"switch divergent_bars must be a list of Unix ms, got {value!r}")
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise SwitchError(f"switch divergent_bars takes Unix ms as integers, got {value!r}")
        return [int(v) for v in value]
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SwitchError(f"switch follow must map Binance symbols to Massive tickers, got {value!r}")
    return dict(value)
