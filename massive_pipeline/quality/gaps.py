"""Runs of missing bars inside trading sessions, found without a Python loop over bars.

The market calendar says which bars should exist (`expected_bars`: a bar is expected when any
minute of it trades), the store says which do. Bars are placed on their timeframe's grid as
integer slots (of New York wall time for the New York close timeframes, whose UTC starts move by
an hour with daylight saving), so membership is one array lookup per bar; runs of missing bars are cut wherever
two consecutive expected bars are not adjacent on the grid, which is exactly where a market
closes (weekend, the metals' daily break, an index's night). A gap therefore never spans or lies
in a closed market, and ten years of minutes take tens of milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from massive_pipeline.core.calendars import MarketCalendar
from massive_pipeline.core.timeframes import Timeframe

GAP_COLUMNS: tuple[str, ...] = ("gap_start", "gap_end", "candles_missing")


def empty_gaps() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gap_start": pd.Series([], dtype="datetime64[ns, UTC]"),
            "gap_end": pd.Series([], dtype="datetime64[ns, UTC]"),
            "candles_missing": pd.Series([], dtype="int64"),
        }
    )


def _slots(ns: np.ndarray, origin: int, step_ns: int) -> np.ndarray:
    return (ns - origin) // step_ns


def _present_at_slots(present_ns: np.ndarray, exp_slot: np.ndarray, origin: int, step_ns: int) -> np.ndarray:
    n_slots = int(exp_slot[-1]) + 1
    present = np.asarray(present_ns, dtype=np.int64)
    slot = _slots(present, origin, step_ns)
    usable = (slot >= 0) & (slot < n_slots) & (slot * step_ns + origin == present)  # on the grid
    have = np.zeros(n_slots, dtype=bool)
    have[slot[usable]] = True
    return have[exp_slot]


def present_mask(present_ns: np.ndarray, expected_ns: np.ndarray, step_ns: int) -> np.ndarray:
    """Whether each expected bar (sorted, on one grid of `step_ns`) is among `present_ns`."""
    if len(expected_ns) == 0:
        return np.zeros(0, dtype=bool)
    origin = int(expected_ns[0])
    return _present_at_slots(present_ns, _slots(expected_ns, origin, step_ns), origin, step_ns)


def missing_runs(
    present_ns: np.ndarray, expected_ns: np.ndarray, step_ns: int, min_bars: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first missing bar, end of last missing bar, bars missing) of every run of at least
    `min_bars` expected bars absent from `present_ns`, as int64 nanoseconds.

    `expected_ns` must be sorted and on one grid of `step_ns`; bars of `present_ns` off that grid
    or outside the expected span are ignored.
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(expected_ns) == 0:
        return empty, empty, empty
    exp_slot = _slots(expected_ns, int(expected_ns[0]), step_ns)
    missing_pos = np.flatnonzero(~_present_at_slots(present_ns, exp_slot, int(expected_ns[0]), step_ns))
    if len(missing_pos) == 0:
        return empty, empty, empty
    # a run continues while the next missing bar is the next expected bar and adjacent on the grid
    new_run = np.ones(len(missing_pos), dtype=bool)
    new_run[1:] = (np.diff(missing_pos) != 1) | (np.diff(exp_slot[missing_pos]) != 1)
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, len(missing_pos)))
    keep = lengths >= min_bars
    first = missing_pos[starts[keep]]
    last = missing_pos[starts[keep] + lengths[keep] - 1]
    return expected_ns[first], expected_ns[last] + step_ns, lengths[keep].astype(np.int64)


def gaps_frame(starts: np.ndarray, ends: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gap_start": pd.to_datetime(starts, unit="ns", utc=True),
            "gap_end": pd.to_datetime(ends, unit="ns", utc=True),
            "candles_missing": counts.astype("int64"),
        }
    )


def find_gaps(
    present: pd.DatetimeIndex | pd.Series | np.ndarray,
    calendar: MarketCalendar,
    start: pd.Timestamp,
    end: pd.Timestamp,
    timeframe: Timeframe,
    min_bars: int = 1,
) -> pd.DataFrame:
    """Gaps (GAP_COLUMNS) of at least `min_bars` bars among the bars expected in [start, end).

    `present` holds the stored bar starts (any order). `gap_end` is exclusive: the end of the
    last missing bar.
    """
    if min_bars < 1:
        raise ValueError(f"min_bars must be at least 1, got {min_bars}")
    expected = calendar.expected_bars(start, end, timeframe)
    if len(expected) == 0:
        return empty_gaps()
    # on the timeframe's uniform grid (New York wall time for D1_NY/W1_NY), then back to UTC
    starts, ends, counts = missing_runs(
        timeframe.grid_ns(_utc(present)), timeframe.grid_ns(expected), timeframe.delta.value, min_bars
    )
    return gaps_frame(timeframe.from_grid_ns(starts), timeframe.from_grid_ns(ends), counts)


def _utc(values: pd.DatetimeIndex | pd.Series | np.ndarray) -> pd.DatetimeIndex:
    """Bar starts as a UTC index, whether given as timestamps or as int64 UTC nanoseconds."""
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")
    index = pd.DatetimeIndex(values)
    return index.tz_localize("UTC") if index.tz is None else index
