"""Gap detection against the market calendars: closed markets are never gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.gaps import find_gaps, gaps_frame, missing_runs, present_mask


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _without(index: pd.DatetimeIndex, *holes: tuple[str, str]) -> pd.DatetimeIndex:
    keep = np.ones(len(index), dtype=bool)
    for lo, hi in holes:
        keep &= ~((index >= _ts(lo)) & (index < _ts(hi)))
    return index[keep]


@pytest.mark.parametrize(
    ("calendar", "start", "end"),
    [
        ("forex", "2026-10-07", "2026-10-21"),  # two weekends
        ("forex", "2026-10-28", "2026-11-04"),  # across the US DST change (1 Nov)
        ("metals", "2026-10-05", "2026-10-17"),  # daily 17:00-18:00 New York breaks and a weekend
        ("crypto", "2026-10-01", "2026-10-15"),
        ("us_equity", "2026-10-05", "2026-10-17"),  # nights and a weekend
        ("xetra", "2026-12-21", "2027-01-05"),  # Christmas and New Year closures
    ],
)
@pytest.mark.parametrize("tf", [Timeframe.M1, Timeframe.H1])
def test_a_complete_series_has_no_gaps(calendar, start, end, tf):
    cal = get_calendar(calendar)
    lo, hi = _ts(start), _ts(end)
    stored = cal.expected_bars(lo, hi, tf)
    assert len(stored) > 0
    assert find_gaps(stored, cal, lo, hi, tf, 1).empty


def test_a_two_hour_hole_on_a_forex_tuesday():
    cal = get_calendar("forex")
    lo, hi = _ts("2026-10-05"), _ts("2026-10-17")
    stored = _without(cal.expected_bars(lo, hi, "M1"), ("2026-10-13 10:00", "2026-10-13 12:00"))
    gaps = find_gaps(stored, cal, lo, hi, Timeframe.M1, 3)
    assert gaps.to_dict("records") == [
        {"gap_start": _ts("2026-10-13 10:00"), "gap_end": _ts("2026-10-13 12:00"), "candles_missing": 120}
    ]
    h1 = _without(cal.expected_bars(lo, hi, "H1"), ("2026-10-13 10:00", "2026-10-13 12:00"))
    assert find_gaps(h1, cal, lo, hi, Timeframe.H1, 1)["candles_missing"].tolist() == [2]


def test_holes_at_a_weekend_are_two_gaps_not_one_across_it():
    cal = get_calendar("forex")
    lo, hi = _ts("2026-10-14"), _ts("2026-10-21")
    # forex closes Friday 17:00 New York = 21:00 UTC and reopens Sunday 21:00 UTC (EDT)
    stored = _without(cal.expected_bars(lo, hi, "M1"),
                      ("2026-10-16 20:50", "2026-10-16 21:00"), ("2026-10-18 21:00", "2026-10-18 21:10"))
    gaps = find_gaps(stored, cal, lo, hi, Timeframe.M1, 3)
    assert gaps[["gap_start", "gap_end", "candles_missing"]].values.tolist() == [
        [_ts("2026-10-16 20:50"), _ts("2026-10-16 21:00"), 10],
        [_ts("2026-10-18 21:00"), _ts("2026-10-18 21:10"), 10],
    ]


def test_metals_break_is_not_a_gap_and_splits_adjacent_holes():
    cal = get_calendar("metals")
    lo, hi = _ts("2026-10-12"), _ts("2026-10-17")
    expected = cal.expected_bars(lo, hi, "M1")
    # the break is 17:00-18:00 New York = 21:00-22:00 UTC in October
    assert not ((expected >= _ts("2026-10-13 21:00")) & (expected < _ts("2026-10-13 22:00"))).any()
    stored = _without(expected, ("2026-10-13 20:55", "2026-10-13 21:00"), ("2026-10-13 22:00", "2026-10-13 22:04"))
    gaps = find_gaps(stored, cal, lo, hi, Timeframe.M1, 3)
    assert gaps["candles_missing"].tolist() == [5, 4]
    assert gaps["gap_end"].iloc[0] == _ts("2026-10-13 21:00") and gaps["gap_start"].iloc[1] == _ts("2026-10-13 22:00")


def test_an_index_night_is_not_a_gap_but_a_missing_session_hour_is():
    cal = get_calendar("us_equity")
    lo, hi = _ts("2026-10-12"), _ts("2026-10-17")
    stored = _without(cal.expected_bars(lo, hi, "M1"), ("2026-10-14 14:00", "2026-10-14 15:00"))
    gaps = find_gaps(stored, cal, lo, hi, Timeframe.M1, 3)
    assert gaps["candles_missing"].tolist() == [60]


def test_minimum_length():
    cal = get_calendar("crypto")
    lo, hi = _ts("2026-10-10"), _ts("2026-10-11")
    stored = _without(cal.expected_bars(lo, hi, "M1"), ("2026-10-10 03:00", "2026-10-10 03:02"))
    assert find_gaps(stored, cal, lo, hi, Timeframe.M1, 3).empty
    assert find_gaps(stored, cal, lo, hi, Timeframe.M1, 2)["candles_missing"].tolist() == [2]
    with pytest.raises(ValueError, match="min_bars"):
        find_gaps(stored, cal, lo, hi, Timeframe.M1, 0)


def _reference(present: list[int], expected: list[int], step: int, min_bars: int) -> list[tuple[int, int, int]]:
    """A plain loop over the expected bars: the obviously-correct version."""
    have, out, run = set(present), [], []
    for i, t in enumerate(expected):
        adjacent = i > 0 and t - expected[i - 1] == step
        if t in have:
            if len(run) >= min_bars:
                out.append((run[0], run[-1] + step, len(run)))
            run = []
            continue
        if run and not adjacent:
            if len(run) >= min_bars:
                out.append((run[0], run[-1] + step, len(run)))
            run = []
        run.append(t)
    if len(run) >= min_bars:
        out.append((run[0], run[-1] + step, len(run)))
    return out


@pytest.mark.parametrize("calendar", ["forex", "metals", "us_equity"])
def test_vectorized_runs_equal_a_plain_loop(calendar):
    cal = get_calendar(calendar)
    expected = cal.expected_bars(_ts("2026-09-01"), _ts("2026-10-01"), "M1").asi8
    rng = np.random.default_rng(11)
    drop = rng.random(len(expected)) < 0.05
    for start in rng.choice(len(expected) - 200, 20, replace=False):  # longer holes too
        drop[start : start + rng.integers(1, 150)] = True
    present = expected[~drop]
    step = Timeframe.M1.delta.value
    for min_bars in (1, 3, 10):
        got = missing_runs(present, expected, step, min_bars)
        assert list(zip(*(a.tolist() for a in got), strict=True)) == _reference(
            present.tolist(), expected.tolist(), step, min_bars
        )


def test_minimum_length_settings_from_the_environment():
    from massive_pipeline.quality.settings import QualitySettings, QualitySettingsError

    assert QualitySettings.from_env({}).min_gap_bars(Timeframe.M1) == 3
    assert QualitySettings.from_env({}).min_gap_bars(Timeframe.H1) == 1
    assert QualitySettings.from_env({"MASSIVE_GAP_MIN_BARS": "5"}).min_gap_bars(Timeframe.M1) == 5
    both = QualitySettings.from_env({"MASSIVE_GAP_MIN_BARS": "m1=4, 1h=2"})
    assert (both.min_gap_bars(Timeframe.M1), both.min_gap_bars(Timeframe.H1)) == (4, 2)
    with pytest.raises(QualitySettingsError, match=r"MASSIVE_GAP_MIN_BARS \(M1\) must be a positive integer"):
        QualitySettings.from_env({"MASSIVE_GAP_MIN_BARS": "M1=0"})
    with pytest.raises(QualitySettingsError, match="MASSIVE_GAP_MIN_BARS: unknown timeframe 'H7'"):
        QualitySettings.from_env({"MASSIVE_GAP_MIN_BARS": "H7=2"})
    with pytest.raises(QualitySettingsError, match="MASSIVE_QUALITY_COMPLETE_MIN must be between 0 and 1"):
        QualitySettings.from_env({"MASSIVE_QUALITY_COMPLETE_MIN": "1.5"})


# -- empty frames and arrays: every one gives an empty, typed result -----------------------------------


def _assert_empty_gaps(gaps: pd.DataFrame) -> None:
    assert gaps.empty and list(gaps.columns) == ["gap_start", "gap_end", "candles_missing"]
    assert str(gaps["gap_start"].dtype) == "datetime64[ns, UTC]" and gaps["candles_missing"].dtype == np.int64


@pytest.mark.parametrize(
    "present",
    [
        pd.DatetimeIndex([], tz="UTC"),
        pd.Series([], dtype="datetime64[ns, UTC]"),
        pd.Series([], dtype=object),  # what an empty read without a typed column would give
        np.zeros(0, dtype=np.int64),
    ],
    ids=["index", "series", "untyped", "ns"],
)
def test_nothing_stored_in_a_trading_window_is_one_gap(present):
    cal = get_calendar("crypto")
    gaps = find_gaps(present, cal, _ts("2026-10-10 03:00"), _ts("2026-10-10 04:00"), Timeframe.M1, 3)
    assert gaps.to_dict("records") == [
        {"gap_start": _ts("2026-10-10 03:00"), "gap_end": _ts("2026-10-10 04:00"), "candles_missing": 60}
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-10-17 06:00", "2026-10-17 18:00"),  # a forex Saturday: nothing expected
        ("2026-10-13 10:00", "2026-10-13 10:00"),  # an empty window
        ("2026-10-14 10:00", "2026-10-13 10:00"),  # an inverted one
    ],
)
def test_windows_without_expected_bars_have_no_gaps(start, end):
    for present in (pd.DatetimeIndex([], tz="UTC"), pd.date_range("2026-10-13", periods=3, freq="1min", tz="UTC")):
        _assert_empty_gaps(find_gaps(present, get_calendar("forex"), _ts(start), _ts(end), Timeframe.M1))


def test_a_single_stored_bar_and_bars_off_the_grid():
    cal = get_calendar("crypto")
    lo = _ts("2026-10-10 03:00")
    _assert_empty_gaps(find_gaps(pd.DatetimeIndex([lo]), cal, lo, lo + pd.Timedelta(minutes=1), Timeframe.M1))
    # bars off the grid or outside the window do not count as present
    odd = pd.DatetimeIndex([lo + pd.Timedelta(seconds=30), lo - pd.Timedelta(hours=1)])
    gaps = find_gaps(odd, cal, lo, lo + pd.Timedelta(minutes=5), Timeframe.M1)
    assert gaps["candles_missing"].tolist() == [5]


def test_the_arrays_underneath_accept_empty_input():
    step = Timeframe.M1.delta.value
    empty = np.zeros(0, dtype=np.int64)
    expected = np.arange(4, dtype=np.int64) * step
    assert present_mask(empty, empty, step).shape == (0,)
    assert present_mask(expected, empty, step).shape == (0,)
    assert present_mask(empty, expected, step).tolist() == [False] * 4
    assert all(len(a) == 0 for a in missing_runs(expected, empty, step))
    assert all(len(a) == 0 for a in missing_runs(expected, expected, step))  # nothing missing
    assert [a.tolist() for a in missing_runs(empty, expected, step)] == [[0], [4 * step], [4]]
    _assert_empty_gaps(gaps_frame(empty, empty, empty))
