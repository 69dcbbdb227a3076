"""Cutting a ranged run into slices: whole partitions, every bar once, bounded size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.candles.slices import (
    SLICE_BASE_BARS,
    PartitionEdges,
    SliceSizeError,
    page_slices,
    slice_bars,
    span_slices,
)

DAY = pd.Timedelta(days=1)
MINUTE = pd.Timedelta(minutes=1)
START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday


def _edges(days: int) -> PartitionEdges:
    return PartitionEdges([(START + i * DAY, START + (i + 1) * DAY) for i in range(days)])


def _bars(ts: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"ts": ts, "close": np.arange(len(ts), dtype=float)})


def _pages(bars: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    bounds = [0, *cuts, len(bars)]
    return [bars.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds, bounds[1:], strict=False)]


def test_pages_cut_anywhere_become_slices_of_whole_days_holding_every_bar_once():
    minutes = pd.date_range(START, START + 10 * DAY, freq="min", inclusive="left", tz="UTC")
    minutes = minutes[minutes.dayofweek < 5]  # no weekend bars
    bars = _bars(minutes)
    pages = _pages(bars, [1000, 2500, 2501, 7000, 9999])  # mid-day, one-bar and empty-free cuts
    slices = list(page_slices(pages, _edges(10), MINUTE, max_bars=2000))
    # contiguous, on day edges, from the first partition's start to the last one's end
    assert slices[0].lo == START and slices[-1].hi == START + 10 * DAY
    assert all(a.hi == b.lo for a, b in zip(slices, slices[1:], strict=False))
    assert all((s.lo - START) % DAY == pd.Timedelta(0) for s in slices)
    # every bar in exactly one slice, inside it; no slice spans more than 2000 minutes unless it is one day
    joined = pd.concat([s.bars for s in slices], ignore_index=True)
    pd.testing.assert_frame_equal(joined, bars)
    assert all(((s.bars["ts"] >= s.lo) & (s.bars["ts"] < s.hi)).all() for s in slices)
    assert all(s.hi - s.lo <= max(2000 * MINUTE, DAY) for s in slices)
    # the weekend is covered too, by slices without bars, so a write there still sees the store
    assert any(len(s.bars) == 0 for s in slices)


def test_a_later_page_copy_of_a_pending_bar_wins_and_a_released_one_is_dropped():
    minutes = pd.date_range(START, START + 3 * DAY, freq="min", inclusive="left", tz="UTC")
    bars = _bars(minutes)
    first, second = bars.iloc[:2000], bars.iloc[1990:].copy()
    second["close"] = second["close"] + 0.5  # the overlap's later copy
    late = bars.iloc[100:110].assign(close=-1.0)  # a copy of day 1, released after the first page
    slices = list(page_slices([first, second, late], _edges(3), MINUTE, max_bars=1440))
    joined = pd.concat([s.bars for s in slices], ignore_index=True).set_index("ts")["close"]
    assert joined.index.is_unique and len(joined) == len(bars)
    # 1990..1999 sit in day 2, still pending when the second page came: its copy is kept
    assert (joined.loc[minutes[1990:2000]].to_numpy() == bars["close"].iloc[1990:2000].to_numpy() + 0.5).all()
    assert (joined.loc[minutes[100:110]].to_numpy() == bars["close"].iloc[100:110].to_numpy()).all()


def test_an_empty_answer_still_covers_the_range_a_bounded_span_at_a_time():
    slices = list(page_slices([], _edges(90), MINUTE, max_bars=SLICE_BASE_BARS))
    assert slices[0].lo == START and slices[-1].hi == START + 90 * DAY
    assert all(len(s.bars) == 0 and s.hi - s.lo <= SLICE_BASE_BARS * MINUTE for s in slices)
    assert len(slices) == 3  # 34 days, 34 days, 22 days


def test_derived_slices_group_partitions_by_their_base_bars():
    weeks = PartitionEdges([(START + 7 * i * DAY, START + 7 * (i + 1) * DAY) for i in range(10)])
    spans = list(span_slices(weeks, MINUTE, max_bars=50_000))  # 50,000 minutes: four whole weeks
    assert [(hi - lo) // DAY for lo, hi in spans] == [28, 28, 14]
    # a partition longer than a slice is a slice of its own, never split
    assert [(hi - lo) // DAY for lo, hi in span_slices(weeks, MINUTE, max_bars=100)] == [7] * 10


def test_slice_size_comes_from_the_environment_and_bad_values_name_the_variable():
    assert slice_bars({}) == SLICE_BASE_BARS
    assert slice_bars({"MASSIVE_SLICE_BARS": "1200"}) == 1200
    for bad in ("0", "-3", "lots"):
        with pytest.raises(SliceSizeError, match="MASSIVE_SLICE_BARS"):
            slice_bars({"MASSIVE_SLICE_BARS": bad})
