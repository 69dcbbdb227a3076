"""The arguments of a candle read, checked once and turned into one immutable request.

Every bad argument fails here, before any connection is opened, with one line naming the
argument: an unknown timeframe, a malformed symbol, a bound that is not a timestamp, an end
before the start, a column the store does not have, a chunk size that is not a positive integer.
The SQL builders and decoders downstream can then trust what they are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from massive_pipeline.store.bar_query import VALUE_COLUMNS  # the store's candle columns in their stored order
from massive_pipeline.store.validate import bound, check_symbol, check_timeframe

Output = Literal["pandas", "arrow", "polars"]
OUTPUTS: tuple[str, ...] = ("pandas", "arrow", "polars")
KEY_COLUMNS: tuple[str, ...] = ("symbol", "ts")
ALL_COLUMNS: tuple[str, ...] = KEY_COLUMNS + VALUE_COLUMNS


@dataclass(frozen=True)
class ReadRequest:
    """What to read: symbols (sorted, unique), one timeframe, [start, end), which value columns."""

    symbols: tuple[str, ...]
    timeframe: str
    start: pd.Timestamp
    end: pd.Timestamp
    columns: tuple[str, ...]
    include_forming: bool
    output: Output

    @property
    def output_columns(self) -> tuple[str, ...]:
        return KEY_COLUMNS + self.columns

    @property
    def empty_range(self) -> bool:
        return self.start >= self.end


def _symbols(symbols: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(symbols, str):
        return (check_symbol(symbols),)
    try:
        items = list(symbols)
    except TypeError:
        raise TypeError(f"symbols must be a symbol name or a list of them, got {symbols!r}") from None
    if not items:
        raise ValueError("symbols must name at least one symbol, got an empty list")
    return tuple(sorted({check_symbol(s) for s in items}))


def _columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return VALUE_COLUMNS
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in ALL_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; the candle store has {', '.join(ALL_COLUMNS)}")
    return tuple(dict.fromkeys(c for c in columns if c not in KEY_COLUMNS))


def _bounds(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo, hi = bound(start, "start"), bound(end, "end")
    if lo > hi:
        raise ValueError(f"end {hi} is before start {lo} (end is exclusive)")
    return lo, hi


def make_request(
    symbols: str | Iterable[str],
    timeframe: str,
    start: Any,
    end: Any,
    columns: Sequence[str] | None,
    include_forming: bool,
    output: str,
) -> ReadRequest:
    """Check every argument of a read; the first bad one raises a one-line error naming it."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if not isinstance(include_forming, bool):
        raise TypeError(f"include_forming must be True or False, got {include_forming!r}")
    lo, hi = _bounds(start, end)
    return ReadRequest(
        symbols=_symbols(symbols),
        timeframe=check_timeframe(timeframe),
        start=lo,
        end=hi,
        columns=_columns(columns),
        include_forming=include_forming,
        output=output,  # type: ignore[arg-type]
    )


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_span(value: Any, name: str) -> pd.Timedelta:
    try:
        span = pd.Timedelta(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a time span such as '30D' or a timedelta, got {value!r}") from None
    if span is pd.NaT or span <= pd.Timedelta(0):
        raise ValueError(f"{name} must be a positive time span, got {value!r}")
    return span
