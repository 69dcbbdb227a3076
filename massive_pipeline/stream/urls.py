"""Where the kline stream of a set of symbols is: one raw stream, or Binance's combined stream.

Binance serves one stream at `<base>/ws/<symbol lower>@kline_1m` and several at
`<base>/stream?streams=a/b`, whose messages wrap each event as `{"stream": …, "data": …}`
(`events.parse_event` unwraps both).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlsplit

WS_URL_ENV = "BINANCE_WS_URL"
DEFAULT_WS_URL = "wss://stream.binance.com:9443"
INTERVAL = "1m"


class StreamUrlError(ValueError):
    """`BINANCE_WS_URL` is not a ws:// or wss:// URL."""


def base_url(url: str | None = None) -> str:
    """The stream's base: `url`, else `$BINANCE_WS_URL`, else Binance's public market-data stream."""
    chosen = (url or os.environ.get(WS_URL_ENV) or DEFAULT_WS_URL).strip().rstrip("/")
    parts = urlsplit(chosen)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise StreamUrlError(f"{WS_URL_ENV} must be a ws:// or wss:// URL, got {chosen!r}")
    return chosen


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@kline_{INTERVAL}"


def stream_url(symbols: Sequence[str], base: str | None = None) -> str:
    """The URL of the 1-minute kline stream of `symbols` (Binance symbols, e.g. BTCUSDT)."""
    if not symbols:
        raise ValueError("stream_url needs at least one symbol")
    root = base_url(base)
    if len(symbols) == 1:
        return f"{root}/ws/{stream_name(symbols[0])}"
    return f"{root}/stream?streams=" + "/".join(stream_name(s) for s in symbols)
