"""Grid alignment of the timeframes, above all the New York close ones across US DST changes
(2026: summer time from Sunday 8 March, winter time from Sunday 1 November)."""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.core.timeframes import Convention, Timeframe, UnknownTimeframeError, parse_timeframe


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("instant", "bar_start"),
    [
        ("2026-10-26 12:00", "2026-10-25 21:00"),  # Monday noon: Monday's bar opened Sunday 17:00 EDT
        ("2026-10-26 20:59", "2026-10-25 21:00"),  # the last minute of Monday's session
        ("2026-10-26 21:00", "2026-10-26 21:00"),  # 17:00 EDT: Tuesday's bar begins
        ("2026-11-01 21:59", "2026-10-31 21:00"),  # Sunday 16:59 EST: still the (closed) Saturday session
        (
            "2026-11-01 22:00",
            "2026-11-01 22:00",
        ),  # Sunday 17:00 EST: the week's first bar, an hour later in UTC
        ("2026-03-08 21:00", "2026-03-08 21:00"),  # Sunday 17:00 EDT after the spring change
        ("2026-03-08 21:59", "2026-03-08 21:00"),
    ],
)
def test_d1_ny_bars_start_at_17_new_york(instant, bar_start):
    assert Timeframe.D1_NY.floor(utc(instant)) == utc(bar_start)
    assert Timeframe.D1_NY.floor(pd.DatetimeIndex([utc(instant)]))[0] == utc(bar_start)


def test_w1_ny_weeks_start_at_sunday_17_new_york():
    assert Timeframe.W1_NY.floor(utc("2026-10-30 20:59")) == utc("2026-10-25 21:00")  # Friday's close minute
    assert Timeframe.W1_NY.floor(utc("2026-11-01 21:59")) == utc("2026-10-25 21:00")
    assert Timeframe.W1_NY.floor(utc("2026-11-01 22:00")) == utc("2026-11-01 22:00")
    assert Timeframe.W1_NY.floor(utc("2026-11-04 09:00")) == utc("2026-11-01 22:00")


@pytest.mark.parametrize(
    ("tf", "start", "hours"),
    [
        (Timeframe.D1_NY, "2026-10-31 21:00", 25),  # the Saturday session holding the autumn change
        (Timeframe.D1_NY, "2026-11-01 22:00", 24),
        (Timeframe.D1_NY, "2026-03-07 22:00", 23),  # the Saturday session holding the spring change
        (Timeframe.W1_NY, "2026-10-25 21:00", 169),
        (Timeframe.W1_NY, "2026-03-01 22:00", 167),
        (Timeframe.D1, "2026-11-01 00:00", 24),
    ],
)
def test_bar_end_is_the_next_bar_start(tf, start, hours):
    end = tf.bar_end(utc(start))
    assert end - utc(start) == pd.Timedelta(hours=hours)
    assert tf.floor(end) == end and tf.floor(end - pd.Timedelta(minutes=1)) == utc(start)


def test_grid_ns_makes_new_york_starts_uniform_and_round_trips():
    starts = pd.DatetimeIndex([utc("2026-10-29 21:00"), utc("2026-11-01 22:00"), utc("2026-11-02 22:00")])
    grid = Timeframe.D1_NY.grid_ns(starts)
    day = pd.Timedelta(days=1).value
    assert (grid[1] - grid[0], grid[2] - grid[1]) == (3 * day, day)
    assert (Timeframe.D1_NY.from_grid_ns(grid) == starts.asi8).all()
    assert (Timeframe.H1.grid_ns(starts) == starts.asi8).all()  # UTC timeframes: the UTC nanoseconds


def test_alignment_and_conventions():
    ny_starts = pd.DatetimeIndex([utc("2026-10-25 21:00"), utc("2026-11-01 22:00"), utc("2026-11-01 21:00")])
    assert list(Timeframe.D1_NY.is_aligned(ny_starts)) == [True, True, False]
    assert (Timeframe.D1.convention, Timeframe.W1_NY.convention, Timeframe.H1.convention) == (
        Convention.UTC,
        Convention.NEW_YORK_CLOSE,
        None,
    )
    assert [tf.value for tf in Timeframe if tf.is_weekly] == ["W1", "W1_NY"]
    assert Timeframe.D1_NY.key == "d1_ny"


def test_parse_names_and_aliases():
    assert parse_timeframe("d1_ny") is Timeframe.D1_NY
    assert parse_timeframe("1w_ny") is Timeframe.W1_NY
    with pytest.raises(UnknownTimeframeError, match="unknown timeframe 'D1_LDN'.*D1_NY, W1_NY"):
        parse_timeframe("D1_LDN")
