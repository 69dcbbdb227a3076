"""Klines of a Binance symbol from the Massive bundled server's deterministic minute bars.

The prices are the Massive ticker's (`instruments.py`, `prices.py`), times the basis, so the two
bundled servers agree bar for bar the way BTCUSDT and BTCUSD do (up to USDT's basis), and the same
minutes are missing in both. Intervals above a minute aggregate the minutes with the Massive
server's `aggregate` on the epoch grid, weeks from Monday 00:00 UTC, which is how Binance cuts them.
"""

from __future__ import annotations

import numpy as np

from massive_pipeline.binance.intervals import INTERVAL_MS
from massive_pipeline.testing.binance_server.switches import BinanceSwitches
from massive_pipeline.testing.devserver.bars import MINUTE_MS, Bars, Bucketing, aggregate
from massive_pipeline.testing.devserver.instruments import Instrument, resolve_instrument
from massive_pipeline.testing.devserver.prices import minute_bars

_TIMESPANS = {"m": (1, "minute"), "h": (1, "hour"), "d": (1, "day"), "w": (1, "week")}
_PRICE_DECIMALS = 8


def followed_ticker(symbol: str, switches: BinanceSwitches) -> str:
    """The Massive ticker whose prices `symbol` follows: the `follow` switch, else BTCUSDT → X:BTCUSD."""
    if symbol in switches.follow:
        return switches.follow[symbol]
    base = symbol.removesuffix("USDT") if symbol.endswith("USDT") and len(symbol) > 4 else symbol
    return f"X:{base}USD"


def instrument_for(symbol: str, switches: BinanceSwitches) -> Instrument | None:
    return resolve_instrument(followed_ticker(symbol, switches))


def bucketing_for(interval: str) -> Bucketing:
    count, unit = int(interval[:-1]), interval[-1]
    return Bucketing.of(count, _TIMESPANS[unit][1])


def klines(inst: Instrument, interval: str, start_ms: int, end_ms: int, limit: int, now_ms: int,
           switches: BinanceSwitches, seed: int = 0) -> Bars:
    """Up to `limit` bars opening in [start_ms, end_ms] (inclusive, as Binance reads endTime) and no
    later than `now_ms`; the one open at `now_ms` holds the minutes up to then (it is forming)."""
    step = INTERVAL_MS[interval]
    bucketing = bucketing_for(interval)
    first = bucketing.floor(max(start_ms, 0))
    if first < start_ms:
        first += step
    last_open = min(end_ms, now_ms)
    parts: list[Bars] = []
    got = 0
    cursor = first
    # generate in chunks of `limit` intervals until `limit` klines are found (minutes may be missing)
    while cursor <= last_open and got < limit:
        chunk_end = min(cursor + limit * step, last_open + 1)  # exclusive bound on open times
        minute_end = min(bucketing.end_of(chunk_end - 1), (now_ms // MINUTE_MS + 1) * MINUTE_MS)
        bars = aggregate(minute_bars(inst, cursor, minute_end, seed), bucketing).between(cursor, chunk_end)
        parts.append(bars)
        got += len(bars)
        cursor = chunk_end
    out = Bars.concat(parts)
    return out.select(slice(0, limit))


def kline_rows(bars: Bars, interval: str, switches: BinanceSwitches) -> list[list[object]]:
    """Binance's array shape: [openTime, "open", "high", "low", "close", "volume", closeTime,
    "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "0"], prices times the basis."""
    step = INTERVAL_MS[interval]
    scale = np.full(len(bars), switches.basis)
    if switches.divergent_bars:
        scale = np.where(np.isin(bars.t, switches.divergent_bars), scale * (1.0 + switches.divergence), scale)
    o, h, low, c = (np.round(getattr(bars, name) * scale, _PRICE_DECIMALS) for name in ("o", "h", "l", "c"))
    quote = bars.vw * bars.v * scale
    fmt = f"{{:.{_PRICE_DECIMALS}f}}"
    return [
        [int(t), fmt.format(o[i]), fmt.format(h[i]), fmt.format(low[i]), fmt.format(c[i]), fmt.format(bars.v[i]),
         int(t) + step - 1, fmt.format(quote[i]), int(bars.n[i]), fmt.format(bars.v[i] / 2),
         fmt.format(quote[i] / 2), "0"]
        for i, t in enumerate(bars.t)
    ]
