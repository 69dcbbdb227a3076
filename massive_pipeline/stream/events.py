"""Binance kline events parsed into `Kline`s, or refused with one line naming the field.

A kline event is `{"e": "kline", "E": ms, "s": "BTCUSDT", "k": {"t": openMs, "T": closeMs, "s":
"BTCUSDT", "i": "1m", "o": "..", "c": "..", "h": "..", "l": "..", "v": "..", "n": trades, "x":
isClosed, "q": quoteVolume, …}}`; the combined stream wraps it as `{"stream": …, "data": event}`.
Prices and volumes arrive as decimal strings and are parsed exactly as the REST klines are, so a
bar from the stream and the same bar from the REST refresh are equal and the merge records no
revision. A malformed event is refused rather than half-read: storing a bar whose close is a
guess would be worse than missing it, since the REST refresh fills a missing bar but never
doubts a stored one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

_SHOWN = 120


class KlineEventError(ValueError):
    """A message that is not a well-formed kline event; the message is one line."""


@dataclass(frozen=True)
class Kline:
    """One kline as the stream sent it; `closed` is Binance's `x` (the bar's minute has ended)."""

    symbol: str
    interval: str
    open_ms: int
    close_ms: int
    event_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float | None
    trades: int
    closed: bool

    @property
    def ts(self) -> pd.Timestamp:
        """The bar's start (UTC), the store's key."""
        return pd.Timestamp(self.open_ms, unit="ms", tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        """The start of the next bar: Binance's close time is the last millisecond of the bar."""
        return pd.Timestamp(self.close_ms + 1, unit="ms", tz="UTC")

    def frame(self) -> pd.DataFrame:
        """The kline as the store's bar frame (one row)."""
        vwap = self.quote_volume / self.volume if self.quote_volume is not None and self.volume > 0 else None
        return pd.DataFrame({
            "ts": pd.DatetimeIndex([self.ts]), "open": [self.open], "high": [self.high], "low": [self.low],
            "close": [self.close], "volume": [self.volume], "vwap": pd.array([vwap], dtype="Float64"),
            "trades": pd.array([self.trades], dtype="Int64"),
        })


def _show(raw: str | bytes) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _int(k: dict[str, Any], name: str) -> int:
    value = k.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise KlineEventError(f"field k.{name} is {value!r} (not an integer)")
    return value


def _number(k: dict[str, Any], name: str, *, required: bool = True) -> float | None:
    value = k.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise KlineEventError(f"field k.{name} is {value!r} (not a decimal string)")
    try:
        number = float(value)
    except ValueError:
        raise KlineEventError(f"field k.{name} is {value!r} (not a number)") from None
    if not math.isfinite(number):
        raise KlineEventError(f"field k.{name} is {value!r} (not finite)")
    return number


def _text(k: dict[str, Any], name: str) -> str:
    value = k.get(name)
    if not isinstance(value, str) or not value:
        raise KlineEventError(f"field k.{name} is {value!r} (not a non-empty string)")
    return value


def _kline(event: dict[str, Any]) -> Kline:
    k = event.get("k")
    if not isinstance(k, dict):
        raise KlineEventError(f"field k is {type(k).__name__}, not an object")
    symbol = _text(k, "s")
    if event.get("s") not in (None, symbol):
        raise KlineEventError(f"field s is {event.get('s')!r} but k.s is {symbol!r}")
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise KlineEventError(f"field k.x is {closed!r} (not true or false)")
    open_ms, close_ms = _int(k, "t"), _int(k, "T")
    if close_ms < open_ms:
        raise KlineEventError(f"field k.T ({close_ms}) is before k.t ({open_ms})")
    event_ms = event.get("E", close_ms)
    if isinstance(event_ms, bool) or not isinstance(event_ms, int):
        raise KlineEventError(f"field E is {event_ms!r} (not an integer)")
    return Kline(
        symbol=symbol, interval=_text(k, "i"), open_ms=open_ms, close_ms=close_ms, event_ms=event_ms,
        open=_number(k, "o"), high=_number(k, "h"), low=_number(k, "l"), close=_number(k, "c"),  # type: ignore[arg-type]
        volume=_number(k, "v"), quote_volume=_number(k, "q", required=False), trades=_int(k, "n"),  # type: ignore[arg-type]
        closed=closed,
    )


def parse_event(raw: str | bytes) -> Kline | None:
    """The kline of one stream message; None for messages that are not events (a subscription's
    `{"result": null, "id": 1}`) or events of another type. Raises `KlineEventError` (one line,
    naming the field and showing the start of the message) for anything malformed."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KlineEventError(f"malformed kline event: not JSON: {_show(raw)}") from None
    if isinstance(message, dict) and "data" in message and "stream" in message:
        message = message["data"]
    if not isinstance(message, dict):
        raise KlineEventError(f"malformed kline event: not a JSON object: {_show(raw)}")
    if "e" not in message:
        if "result" in message or "id" in message:  # the answer to a (un)subscribe request
            return None
        raise KlineEventError(f"malformed kline event: no event type 'e': {_show(raw)}")
    if message["e"] != "kline":
        return None
    try:
        return _kline(message)
    except KlineEventError as exc:
        raise KlineEventError(f"malformed kline event: {exc}: {_show(raw)}") from None
