"""Binance REST access: the klines client, its request weights, the `BarProvider` over it.

Knows HTTP and Binance's shapes, nothing of Dagster; `resources/binance.py` wraps the client and
passes the shared limiter's Binance budget in as `acquire(weight)`. Errors are the Massive
client's typed errors (`massive_pipeline.massive.errors`), so callers decide by type for both
providers alike.
"""

from massive_pipeline.binance.client import DEFAULT_BASE_URL, BinanceClient, BinanceStats, KlineFetch
from massive_pipeline.binance.intervals import INTERVALS, interval_for, interval_ms
from massive_pipeline.binance.provider import BinanceProvider
from massive_pipeline.binance.weights import (
    DEFAULT_WEIGHT_LIMIT_PER_MINUTE,
    KLINES_WEIGHT_TIERS,
    MAX_KLINES,
    USED_WEIGHT_HEADER,
    klines_weight,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_WEIGHT_LIMIT_PER_MINUTE",
    "INTERVALS",
    "KLINES_WEIGHT_TIERS",
    "MAX_KLINES",
    "USED_WEIGHT_HEADER",
    "BinanceClient",
    "BinanceProvider",
    "BinanceStats",
    "KlineFetch",
    "interval_for",
    "interval_ms",
    "klines_weight",
]
