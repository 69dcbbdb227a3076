"""Snapshot bodies built from the same minute bars the aggregates endpoint serves.

The last price of a snapshot is the close of the last complete minute bar at the server clock,
the day is the UTC day of that bar, and the previous day the last earlier UTC day with bars, so a
snapshot and an aggregates request made at the same `now` agree.

Universal snapshot (`/v3/snapshot`) items, as read from Massive's documentation:
``{"ticker", "type": "fx"|"crypto"|"indices", "market_status": "open"|"closed", "name",
"session": {"price","open","high","low","close","volume","vwap","change","change_percent",
"previous_close"},
"last_minute": {"open","high","low","close","volume","vwap","transactions","timestamp"(ms)},
"last_updated"(ns), "timeframe": "REAL-TIME"}`` plus ``"last_quote": {"ask","bid","midpoint",
"ask_size","bid_size","last_updated"(ns),"timeframe"}`` for fx (metals are fx pairs),
``"last_trade": {"price","size","exchange","conditions","id","sip_timestamp"(ns),"last_updated"(ns),
"timeframe"}`` for crypto and ``"value"`` for indices. A ticker that cannot exist is an item
``{"ticker", "error": "NOT_FOUND", "message": "Ticker not found."}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.testing.devserver.bars import DAY_MS, MINUTE_MS, Bars
from massive_pipeline.testing.devserver.instruments import Instrument, stable_hash

_LOOKBACK_MS = 10 * DAY_MS
# Half-spread as a fraction of price, by asset class.
_HALF_SPREAD = {"forex": 0.4e-4, "metal": 0.8e-4, "crypto": 0.5e-4, "index": 0.25e-4}
_FX_EXCHANGE = 48
_CRYPTO_EXCHANGE = 1


@dataclass(frozen=True)
class MarketState:
    inst: Instrument
    last: Bars  # one bar: the last complete minute
    day: dict[str, float]
    prev_day: dict[str, float] | None
    open_now: bool
    now_ms: int

    @property
    def price(self) -> float:
        return float(self.last.c[0])

    @property
    def quote_ms(self) -> int:
        """When the last quote/trade happened: inside the last bar's minute, never after now."""
        return min(self.now_ms, int(self.last.t[0]) + MINUTE_MS - 1 - stable_hash("q", self.last.t[0]) % 5000)

    def bid_ask(self) -> tuple[float, float]:
        half = self.price * _HALF_SPREAD[self.inst.asset_class]
        dec = self.inst.decimals
        bid, ask = round(self.price - half, dec), round(self.price + half, dec)
        if ask <= bid:
            ask = round(bid + 10.0**-dec, dec)
        return bid, ask

    def change(self) -> tuple[float, float]:
        if self.prev_day is None:
            return 0.0, 0.0
        prev = self.prev_day["c"]
        diff = round(self.price - prev, self.inst.decimals + 2)
        return diff, round(diff / prev * 100.0, 4)

    def trade_size(self) -> float:
        return round(0.001 + (stable_hash("size", self.inst.ticker, self.last.t[0]) % 10_000) / 5000.0, 6)


def market_state(inst: Instrument, minutes: Bars, now_ms: int) -> MarketState | None:
    """`minutes`: the servable minute bars of the lookback window ending at now (see `lookback`)."""
    complete = minutes.between(0, now_ms - MINUTE_MS + 1)
    if len(complete) == 0:
        return None
    last = complete.select(slice(-1, None))
    day_start = int(last.t[0]) // DAY_MS * DAY_MS
    day = _summary(complete.between(day_start, day_start + DAY_MS))
    earlier = complete.between(0, day_start)
    prev_day = None
    if len(earlier):
        prev_start = int(earlier.t[-1]) // DAY_MS * DAY_MS
        prev_day = _summary(earlier.between(prev_start, prev_start + DAY_MS))
    minute_now = pd.DatetimeIndex([pd.Timestamp(now_ms // MINUTE_MS * MINUTE_MS, unit="ms", tz="UTC")])
    open_now = bool(get_calendar(inst.calendar).is_open(minute_now)[0])
    return MarketState(inst, last, day, prev_day, open_now, now_ms)


def lookback(now_ms: int) -> tuple[int, int]:
    """The minute range a snapshot needs."""
    return now_ms - _LOOKBACK_MS, now_ms


def _summary(bars: Bars) -> dict[str, float]:
    v = float(bars.v.sum())
    vw = float((bars.vw * bars.v).sum() / v) if v > 0 else float(bars.c[-1])
    return {"o": float(bars.o[0]), "h": float(bars.h.max()), "l": float(bars.l.min()), "c": float(bars.c[-1]),
            "v": v, "vw": vw}


def _minute_dict(state: MarketState) -> dict[str, Any]:
    b = state.last
    return {"o": float(b.o[0]), "h": float(b.h[0]), "l": float(b.l[0]), "c": float(b.c[0]), "v": float(b.v[0]),
            "vw": float(b.vw[0]), "n": int(b.n[0]), "t": int(b.t[0]), "av": state.day["v"]}


def v2_ticker(state: MarketState) -> dict[str, Any]:
    """The `ticker` object of `/v2/snapshot/locale/global/markets/{forex|crypto}/tickers/{ticker}`."""
    change, change_pct = state.change()
    body: dict[str, Any] = {
        "ticker": state.inst.ticker,
        "todaysChange": change,
        "todaysChangePerc": change_pct,
        "updated": state.quote_ms * 1_000_000,
        "day": state.day,
        "min": _minute_dict(state),
        "prevDay": state.prev_day or {},
    }
    if state.inst.asset_class == "crypto":
        body["lastTrade"] = {
            "p": state.price, "s": state.trade_size(), "t": state.quote_ms, "x": _CRYPTO_EXCHANGE,
            "c": [2], "i": str(stable_hash("trade", state.inst.ticker, state.last.t[0]) % 10**12),
        }
    else:
        bid, ask = state.bid_ask()
        body["lastQuote"] = {"a": ask, "b": bid, "t": state.quote_ms, "x": _FX_EXCHANGE}
    return body


_V3_TYPES = {"forex": "fx", "metal": "fx", "crypto": "crypto", "index": "indices"}


def v3_item(state: MarketState) -> dict[str, Any]:
    """One item of the universal snapshot's `results`."""
    inst, b = state.inst, state.last
    change, change_pct = state.change()
    updated_ns = state.quote_ms * 1_000_000
    item: dict[str, Any] = {
        "ticker": inst.ticker,
        "type": _V3_TYPES[inst.asset_class],
        "name": inst.ticker.split(":", 1)[1],
        "market_status": "open" if state.open_now else "closed",
        "session": {
            "price": state.price, "open": state.day["o"], "high": state.day["h"], "low": state.day["l"],
            "close": state.day["c"],
            "volume": state.day["v"], "vwap": state.day["vw"], "change": change, "change_percent": change_pct,
            "previous_close": state.prev_day["c"] if state.prev_day else None,
        },
        "last_minute": {
            "open": float(b.o[0]), "high": float(b.h[0]), "low": float(b.l[0]), "close": float(b.c[0]),
            "volume": float(b.v[0]), "vwap": float(b.vw[0]), "transactions": int(b.n[0]), "timestamp": int(b.t[0]),
        },
        "last_updated": updated_ns,
        "timeframe": "REAL-TIME",
    }
    if inst.asset_class == "crypto":
        item["last_trade"] = {
            "price": state.price, "size": state.trade_size(), "exchange": _CRYPTO_EXCHANGE, "conditions": [2],
            "id": str(stable_hash("trade", inst.ticker, b.t[0]) % 10**12), "sip_timestamp": updated_ns,
            "last_updated": updated_ns, "timeframe": "REAL-TIME",
        }
    elif inst.asset_class == "index":
        item["value"] = state.price
    else:
        bid, ask = state.bid_ask()
        item["last_quote"] = {"ask": ask, "bid": bid, "midpoint": round((ask + bid) / 2, inst.decimals + 1),
                              "ask_size": 1, "bid_size": 1, "last_updated": updated_ns, "timeframe": "REAL-TIME"}
    return item


def not_found_item(ticker: str) -> dict[str, Any]:
    return {"ticker": ticker, "error": "NOT_FOUND", "message": "Ticker not found."}
