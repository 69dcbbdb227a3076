"""`massive-pipeline demo`'s window: the last 7 days up to today by default, or fixed completed days."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from massive_pipeline.cli import UsageError, main
from massive_pipeline.cli.demo import DEMO_DAYS, DEMO_END_ENV, demo_window

TODAY = dt.date(2026, 12, 1)  # a Tuesday: the day CI met a partition still forming


def test_default_is_the_last_seven_days_up_to_today_on_the_live_clock():
    assert demo_window(None, DEMO_DAYS, TODAY) == (dt.date(2026, 11, 25), TODAY, None)


def test_an_end_day_fixes_the_days_and_freezes_the_server_at_its_end():
    start, end, server_now = demo_window(dt.date(2026, 10, 7), 3, TODAY)
    assert (start, end) == (dt.date(2026, 10, 5), dt.date(2026, 10, 7))
    # the server answers as if at 00:00 the day after: every bar of the end day is complete
    assert server_now == pd.Timestamp("2026-10-08T00:00:00Z")
    # the same whatever day it is
    assert demo_window(dt.date(2026, 10, 7), 3, dt.date(2030, 1, 1)) == (start, end, server_now)


def test_fewer_than_one_day_is_refused():
    with pytest.raises(UsageError, match="--days must be at least 1"):
        demo_window(None, 0, TODAY)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["demo", "--days", "0"], None, "--days must be at least 1, got 0"),
        (["demo"], "2026-13-01", f"{DEMO_END_ENV} is not a date (YYYY-MM-DD): '2026-13-01'"),
    ],
)
def test_bad_demo_arguments_get_one_line_and_exit_2(monkeypatch, tmp_path, capsys, argv, env, message):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    if env is None:
        monkeypatch.delenv(DEMO_END_ENV, raising=False)
    else:
        monkeypatch.setenv(DEMO_END_ENV, env)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"massive-pipeline: error: {message}\n"
    assert list(tmp_path.iterdir()) == []  # refused before anything was started or written


def test_a_bad_end_day_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--end", "01/10/2026"])
    assert exit_.value.code == 2
    assert "not a date (YYYY-MM-DD): '01/10/2026'" in capsys.readouterr().err
