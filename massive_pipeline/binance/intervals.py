"""The pipeline's timeframes as Binance kline intervals.

Binance cuts its 1d klines at 00:00 UTC and its 1w klines from Monday 00:00 UTC, the pipeline's
own grid, so every UTC timeframe maps one to one and no restamping is needed (unlike Massive's
day bars). The New York close timeframes have no Binance interval: they are always derived.
"""

from __future__ import annotations

from massive_pipeline.core.timeframes import Timeframe, parse_timeframe

INTERVALS: dict[Timeframe, str] = {
    Timeframe.M1: "1m", Timeframe.M5: "5m", Timeframe.M15: "15m", Timeframe.M30: "30m",
    Timeframe.H1: "1h", Timeframe.H4: "4h", Timeframe.D1: "1d", Timeframe.W1: "1w",
}
INTERVAL_MS: dict[str, int] = {name: tf.minutes * 60_000 for tf, name in INTERVALS.items()}


def interval_for(timeframe: Timeframe | str) -> str:
    """The kline interval of a timeframe (`M1` → `1m`); a New York timeframe is refused."""
    tf = parse_timeframe(timeframe)
    try:
        return INTERVALS[tf]
    except KeyError:
        raise ValueError(f"{tf} has no Binance kline interval (it is derived from the base timeframe)") from None


def interval_ms(interval: str) -> int:
    """Length of a kline interval in milliseconds; an unknown interval is refused by name."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"kline interval must be one of {', '.join(INTERVAL_MS)}, got {interval!r}") from None
