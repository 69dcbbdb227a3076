"""Market calendars: weekly forex/metals rules across DST, exchange sessions, expected bars.

UTC instants below are written out by hand from the rules (New York is UTC-4 in summer and UTC-5
in winter; Berlin is UTC+2 in summer and UTC+1 in winter) rather than recomputed with the code
under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.calendars import (
    CALENDAR_NAMES,
    MarketCalendar,
    UnknownCalendarError,
    get_calendar,
)
from massive_pipeline.core.timeframes import Timeframe


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def minutes(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(utc(start), utc(end), freq="min", inclusive="left")


def weekend_break(cal: MarketCalendar, start: str, end: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(last open minute before, first open minute after) the single long closure in the window."""
    opened = cal.open_minutes(utc(start), utc(end))
    jumps = np.flatnonzero(np.diff(opened.asi8) > 60 * 60 * 1_000_000_000 * 6)
    assert len(jumps) == 1, f"expected one weekend closure in {start}..{end}, found {len(jumps)}"
    return opened[jumps[0]], opened[jumps[0] + 1]


@pytest.fixture(scope="module")
def forex() -> MarketCalendar:
    return get_calendar("forex")


@pytest.fixture(scope="module")
def metals() -> MarketCalendar:
    return get_calendar("metals")


@pytest.fixture(scope="module")
def us_equity() -> MarketCalendar:
    return get_calendar("us_equity")


@pytest.fixture(scope="module")
def xetra() -> MarketCalendar:
    return get_calendar("xetra")


# --- registry -------------------------------------------------------------------------------


def test_every_named_calendar_resolves_and_is_shared():
    for name in CALENDAR_NAMES:
        cal = get_calendar(name)
        assert cal.name == name
        assert get_calendar(name) is cal


def test_unknown_calendar_names_itself_and_the_known_ones():
    with pytest.raises(UnknownCalendarError) as err:
        get_calendar("nasdaq")
    assert isinstance(err.value, ValueError)
    assert "'nasdaq'" in str(err.value)
    for name in CALENDAR_NAMES:
        assert name in str(err.value)


# --- forex ----------------------------------------------------------------------------------


@pytest.mark.parametrize("saturday", ["2024-07-06", "2024-01-06", "2024-03-09", "2024-11-02"])
def test_forex_closed_all_saturday(forex, saturday):
    day = pd.Timestamp(saturday)
    assert not forex.is_open(minutes(saturday, str((day + pd.Timedelta(days=1)).date()))).any()


@pytest.mark.parametrize(
    ("sunday", "first_open"),
    [
        ("2024-07-07", "2024-07-07 21:00"),  # EDT: 17:00 New York = 21:00 UTC
        ("2024-01-07", "2024-01-07 22:00"),  # EST: 17:00 New York = 22:00 UTC
    ],
)
def test_forex_opens_sunday_1700_new_york(forex, sunday, first_open):
    opened = forex.open_minutes(utc(sunday), utc(sunday) + pd.Timedelta(days=1))
    assert opened[0] == utc(first_open)
    assert not forex.is_open_at(utc(first_open) - pd.Timedelta(minutes=1))
    # From the open on, trading is continuous to the end of the UTC day.
    assert len(opened) == (utc(sunday) + pd.Timedelta(days=1) - utc(first_open)) / pd.Timedelta(minutes=1)


@pytest.mark.parametrize(
    ("friday", "last_open"),
    [
        ("2024-07-12", "2024-07-12 20:59"),  # EDT: closes 21:00 UTC
        ("2024-01-12", "2024-01-12 21:59"),  # EST: closes 22:00 UTC
    ],
)
def test_forex_closes_friday_1700_new_york(forex, friday, last_open):
    opened = forex.open_minutes(utc(friday), utc(friday) + pd.Timedelta(days=1))
    assert opened[-1] == utc(last_open)
    assert len(opened) == (utc(last_open) - utc(friday)) / pd.Timedelta(minutes=1) + 1


@pytest.mark.parametrize(
    ("window", "last_before", "first_after"),
    [
        # US DST starts Sun 2024-03-10 02:00: Friday still EST (22:00 UTC), Sunday already EDT (21:00).
        (("2024-03-07", "2024-03-12"), "2024-03-08 21:59", "2024-03-10 21:00"),
        # Europe switches later (2024-03-31); New York rules alone must decide this week.
        (("2024-03-14", "2024-03-19"), "2024-03-15 20:59", "2024-03-17 21:00"),
        # US DST ends Sun 2024-11-03 02:00: Friday still EDT (21:00 UTC), Sunday EST (22:00).
        (("2024-10-31", "2024-11-05"), "2024-11-01 20:59", "2024-11-03 22:00"),
    ],
)
def test_forex_weekend_across_dst_changes(forex, window, last_before, first_after):
    assert weekend_break(forex, *window) == (utc(last_before), utc(first_after))


def test_forex_week_is_120_hours_in_both_seasons(forex):
    # Sunday 17:00 to Friday 17:00 New York is 5 × 24 h whatever the offset.
    assert len(forex.open_minutes(utc("2024-07-07"), utc("2024-07-14"))) == 120 * 60
    assert len(forex.open_minutes(utc("2024-01-07"), utc("2024-01-14"))) == 120 * 60
    # The week the clocks move keeps 120 h because both ends are in EDT.
    assert len(forex.open_minutes(utc("2024-03-10"), utc("2024-03-17"))) == 120 * 60


def test_forex_last_open_minute_on_saturday_is_friday_close(forex):
    assert forex.last_open_minute(utc("2024-07-06 12:00")) == utc("2024-07-05 20:59")


def test_last_open_minute_is_the_last_complete_minute(forex):
    assert forex.last_open_minute(utc("2024-07-09 10:00")) == utc("2024-07-09 09:59")
    assert forex.last_open_minute(utc("2024-07-09 10:00:30")) == utc("2024-07-09 09:59")
    # One minute after the Sunday open the first bar is complete.
    assert forex.last_open_minute(utc("2024-07-07 21:01")) == utc("2024-07-07 21:00")
    assert forex.last_open_minute(utc("2024-07-07 21:00")) == utc("2024-07-05 20:59")


def test_naive_timestamps_are_read_as_utc(forex):
    aware = minutes("2024-07-07 20:30", "2024-07-07 21:30")
    naive = aware.tz_localize(None)
    np.testing.assert_array_equal(forex.is_open(naive), forex.is_open(aware))
    assert forex.is_open_at(pd.Timestamp("2024-07-07 21:00")) is True


def test_other_timezones_are_converted_not_relabelled(forex):
    ny = pd.DatetimeIndex([pd.Timestamp("2024-07-07 16:59"), pd.Timestamp("2024-07-07 17:00")]).tz_localize(
        "America/New_York"
    )
    assert forex.is_open(ny).tolist() == [False, True]


def test_nat_is_refused(forex):
    with pytest.raises(ValueError, match="NaT"):
        forex.is_open(pd.DatetimeIndex([utc("2024-07-08"), pd.NaT]))


def test_empty_index_gives_empty_answer(forex):
    assert forex.is_open(pd.DatetimeIndex([], tz="UTC")).shape == (0,)
    assert len(forex.open_minutes(utc("2024-07-08"), utc("2024-07-08"))) == 0


def test_ten_years_of_forex_minutes_vectorized(forex):
    opened = forex.open_minutes(utc("2015-01-01"), utc("2025-01-01"))
    week = opened[(opened >= utc("2024-07-07")) & (opened < utc("2024-07-14"))]
    assert len(week) == 120 * 60
    assert week[0] == utc("2024-07-07 21:00")
    assert week[-1] == utc("2024-07-12 20:59")
    # No Saturday anywhere in ten years (Saturday in New York or in UTC never trades).
    assert not (opened.dayofweek == 5).any()


# --- metals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "break_start"),
    [
        ("2024-07-08", "2024-07-08 21:00"),  # Monday, EDT
        ("2024-07-11", "2024-07-11 21:00"),  # Thursday, EDT
        ("2024-01-09", "2024-01-09 22:00"),  # Tuesday, EST
    ],
)
def test_metals_daily_break_1700_to_1800_new_york(metals, day, break_start):
    b0 = utc(break_start)
    assert metals.is_open_at(b0 - pd.Timedelta(minutes=1))
    assert not metals.is_open(pd.date_range(b0, periods=60, freq="min")).any()
    assert metals.is_open_at(b0 + pd.Timedelta(hours=1))
    # The break is the only closure of the day.
    assert len(metals.open_minutes(utc(day), utc(day) + pd.Timedelta(days=1))) == 23 * 60


def test_metals_open_sunday_1800_new_york_without_a_break(metals):
    opened = metals.open_minutes(utc("2024-07-07"), utc("2024-07-08 04:00"))
    assert opened[0] == utc("2024-07-07 22:00")  # 18:00 EDT
    assert len(opened) == 6 * 60  # continuous to Monday 04:00 UTC


def test_metals_close_friday_1700_new_york(metals):
    assert metals.last_open_minute(utc("2024-07-13")) == utc("2024-07-12 20:59")


def test_metals_week_minutes(metals):
    # Forex's 120 h, minus the hour later Sunday open, minus four daily breaks (Mon-Thu).
    assert len(metals.open_minutes(utc("2024-07-07"), utc("2024-07-14"))) == (120 - 1 - 4) * 60


# --- crypto ---------------------------------------------------------------------------------


def test_crypto_trades_every_minute():
    crypto = get_calendar("crypto")
    span = minutes("2024-03-09", "2024-03-12")  # a weekend and the US DST change
    assert crypto.is_open(span).all()
    assert len(crypto.open_minutes(utc("2024-07-06"), utc("2024-07-08"))) == 2 * 1440
    assert crypto.last_open_minute(utc("2024-07-06 12:00")) == utc("2024-07-06 11:59")


# --- us_equity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "first", "last"),
    [
        ("2024-07-09", "2024-07-09 13:30", "2024-07-09 19:59"),  # EDT
        ("2024-01-09", "2024-01-09 14:30", "2024-01-09 20:59"),  # EST
    ],
)
def test_us_equity_regular_session_is_390_minutes(us_equity, day, first, last):
    opened = us_equity.open_minutes(utc(day), utc(day) + pd.Timedelta(days=1))
    assert len(opened) == 390
    assert (opened[0], opened[-1]) == (utc(first), utc(last))


@pytest.mark.parametrize("day", ["2024-07-06", "2024-07-07", "2024-07-04", "2024-11-28", "2024-12-25"])
def test_us_equity_closed_on_weekends_and_holidays(us_equity, day):
    assert len(us_equity.open_minutes(utc(day), utc(day) + pd.Timedelta(days=1))) == 0


def test_us_equity_early_close_after_thanksgiving(us_equity):
    opened = us_equity.open_minutes(utc("2024-11-29"), utc("2024-11-30"))
    assert opened[0] == utc("2024-11-29 14:30")
    assert opened[-1] == utc("2024-11-29 17:59")  # 13:00 EST close
    assert len(opened) == 210


def test_us_equity_last_open_minute_over_a_holiday_weekend(us_equity):
    # Saturday after Thanksgiving: the last complete bar is Friday's 12:59 EST minute.
    assert us_equity.last_open_minute(utc("2024-11-30 15:00")) == utc("2024-11-29 17:59")


def test_us_equity_spans_decades(us_equity):
    opened = us_equity.open_minutes(utc("2019-12-31"), utc("2020-01-03"))
    days = sorted({ts.date().isoformat() for ts in opened})
    assert days == ["2019-12-31", "2020-01-02"]


# --- xetra ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "first", "last"),
    [
        ("2024-07-09", "2024-07-09 07:00", "2024-07-09 15:29"),  # CEST
        ("2024-01-09", "2024-01-09 08:00", "2024-01-09 16:29"),  # CET
    ],
)
def test_xetra_session_0900_1730_berlin(xetra, day, first, last):
    opened = xetra.open_minutes(utc(day), utc(day) + pd.Timedelta(days=1))
    assert (opened[0], opened[-1]) == (utc(first), utc(last))
    assert len(opened) == 510


def test_xetra_across_its_dst_change_and_easter(xetra):
    # Europe moves to CEST on Sun 2024-03-31; Good Friday 03-29 and Easter Monday 04-01 are closed.
    opened = xetra.open_minutes(utc("2024-03-28"), utc("2024-04-03"))
    by_day = {d: (grp.min(), grp.max()) for d, grp in pd.Series(opened).groupby(opened.date)}
    assert [d.isoformat() for d in by_day] == ["2024-03-28", "2024-04-02"]
    assert by_day[pd.Timestamp("2024-03-28").date()] == (utc("2024-03-28 08:00"), utc("2024-03-28 16:29"))
    assert by_day[pd.Timestamp("2024-04-02").date()] == (utc("2024-04-02 07:00"), utc("2024-04-02 15:29"))


# --- expected_bars --------------------------------------------------------------------------


def test_forex_d1_bars_of_one_week(forex):
    # The Monday-to-Monday UTC week: Mon..Fri trade; Friday ends 21:00 UTC (summer), Saturday is
    # closed, and the next forex week opens Sunday 21:00 UTC, so Sunday's UTC day has a bar too.
    bars = forex.expected_bars(utc("2024-07-08"), utc("2024-07-15"), Timeframe.D1)
    expected = [utc(f"2024-07-{d:02d}") for d in (8, 9, 10, 11, 12, 14)]
    assert list(bars) == expected


def test_forex_d1_bars_skip_only_saturday_in_winter(forex):
    # Winter open is 22:00 UTC Sunday: still inside Sunday's UTC day, so the same pattern holds.
    bars = forex.expected_bars(utc("2024-01-08"), utc("2024-01-15"), Timeframe.D1)
    assert list(bars) == [utc(f"2024-01-{d:02d}") for d in (8, 9, 10, 11, 12, 14)]


@pytest.mark.parametrize(
    ("sunday", "friday"),
    [("2024-07-07", "2024-07-12"), ("2024-01-07", "2024-01-12")],
)
def test_forex_h4_bars_of_one_week(forex, sunday, friday):
    # Sunday opens at 21:00 or 22:00 UTC, inside the 20:00 H4 bar; Friday closes at 21:00 or 22:00
    # UTC, so Friday's 20:00 bar still has trading minutes. Everything in between trades.
    bars = forex.expected_bars(utc(sunday), utc(friday) + pd.Timedelta(days=1), Timeframe.H4)
    expected = pd.date_range(utc(sunday) + pd.Timedelta(hours=20), utc(friday) + pd.Timedelta(hours=20), freq="4h")
    assert list(bars) == list(expected)
    assert len(bars) == 1 + 4 * 6 + 6


def test_w1_only_bars_starting_inside_the_window(forex):
    # Wednesday 07-03 lies inside the 07-01 weekly bar, which starts before the window: left out.
    # The 07-15 bar starts inside the window though it ends after it: kept.
    bars = forex.expected_bars(utc("2024-07-03"), utc("2024-07-20"), "W1")
    assert list(bars) == [utc("2024-07-08"), utc("2024-07-15")]


def test_h4_bar_with_trading_only_after_the_window_end_is_expected(forex):
    # The Sunday 20:00 H4 bar starts inside [20:00, 20:30) but trades only from 21:00.
    assert list(forex.expected_bars(utc("2024-07-07 20:00"), utc("2024-07-07 20:30"), Timeframe.H4)) == [
        utc("2024-07-07 20:00")
    ]


def test_expected_bars_of_adjacent_windows_add_up(forex):
    a, b, c = utc("2024-07-05"), utc("2024-07-07 21:30"), utc("2024-07-10 02:17")
    for tf in (Timeframe.M15, Timeframe.H4, Timeframe.D1):
        joined = forex.expected_bars(a, b, tf).append(forex.expected_bars(b, c, tf))
        assert list(joined) == list(forex.expected_bars(a, c, tf)), tf


def test_us_equity_h1_and_d1_bars(us_equity):
    # Session 13:30-20:00 UTC in July: H1 bars 13:00 (half trading) through 19:00.
    h1 = us_equity.expected_bars(utc("2024-07-09"), utc("2024-07-10"), Timeframe.H1)
    assert list(h1) == [utc(f"2024-07-09 {h:02d}:00") for h in range(13, 20)]
    d1 = us_equity.expected_bars(utc("2024-07-01"), utc("2024-07-08"), Timeframe.D1)
    assert list(d1) == [utc(f"2024-07-{d:02d}") for d in (1, 2, 3, 5)]


def test_expected_bars_of_an_empty_or_reversed_window(forex):
    assert len(forex.expected_bars(utc("2024-07-09"), utc("2024-07-09"), Timeframe.H1)) == 0
    assert len(forex.expected_bars(utc("2024-07-10"), utc("2024-07-09"), Timeframe.H1)) == 0
    assert len(forex.expected_bars(utc("2024-07-06"), utc("2024-07-07"), Timeframe.D1)) == 0


def test_expected_bars_rejects_unknown_timeframe(forex):
    with pytest.raises(ValueError, match="'H3'"):
        forex.expected_bars(utc("2024-07-08"), utc("2024-07-09"), "H3")
