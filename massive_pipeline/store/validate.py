"""Checks of the store's scalar arguments, so bad input fails with a message naming it.

Database errors about an over-long symbol or an unknown timeframe would arrive late (after a
window was deleted inside the transaction) and name columns rather than arguments.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from massive_pipeline.core.timeframes import Timeframe, parse_timeframe
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.store.schema import SOURCE_LENGTH, SYMBOL_LENGTH


def check_symbol(symbol: Any) -> str:
    if not isinstance(symbol, str) or not symbol or len(symbol) > SYMBOL_LENGTH or symbol != symbol.strip() or (
        any(ch.isspace() for ch in symbol)
    ):
        raise ValueError(
            f"symbol must be a non-empty string of at most {SYMBOL_LENGTH} characters without spaces, got {symbol!r}"
        )
    return symbol


def check_timeframe(timeframe: Timeframe | str) -> str:
    return parse_timeframe(timeframe).value


def check_source(source: Any) -> str:
    if not isinstance(source, str) or not source or len(source.encode("utf-8")) > SOURCE_LENGTH:
        raise ValueError(f"source must be a non-empty string of at most {SOURCE_LENGTH} bytes, got {source!r}")
    return source


def bound(value: Any, name: str) -> pd.Timestamp:
    """A half-open bound (`ts >= value`, `ts < value`) rounded up to the millisecond.

    Bars sit on whole milliseconds, so rounding a bound up selects exactly the same bars, and it
    makes the SQLite (epoch milliseconds) and PostgreSQL (microseconds) comparisons agree.
    """
    return to_utc(value, name).ceil("ms")


def optional_bound(value: Any, name: str) -> pd.Timestamp | None:
    return None if value is None else bound(value, name)


def window(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo, hi = bound(start, "start"), bound(end, "end")
    if lo >= hi:
        raise ValueError(f"window start {lo} must be before end {hi}")
    return lo, hi
