"""The API's accounting of a ranged request: base bars per page, whole bars per page, one request
at least, days for D1 and W1."""

from __future__ import annotations

import datetime as dt

import numpy as np

from massive_pipeline.bootstrap.accounting import Accounting, pages_of
from massive_pipeline.core.timeframes import Timeframe

DAY = dt.date(2026, 10, 7)  # a Wednesday
SATURDAY = dt.date(2026, 10, 10)


def test_minute_based_requests_scan_minutes_in_whole_bars():
    small = Accounting(page_limit=100)
    assert small.cost("crypto", Timeframe.M1, DAY, DAY).requests == 15  # 1440 minutes, 100 a page
    assert small.cost("crypto", Timeframe.H1, DAY, DAY).requests == 24  # 60-minute bars: one fits a page
    assert small.cost("crypto", Timeframe.H4, DAY, DAY).requests == 6  # a bar above the cap gets a page alone
    assert small.cost("crypto", Timeframe.M1, DAY, DAY).base_bars == 1440


def test_day_and_week_requests_scan_days():
    real = Accounting()
    span = (dt.date(2020, 1, 1), dt.date(2026, 10, 7))
    assert real.cost("crypto", Timeframe.D1, *span) == real.cost("crypto", Timeframe.W1, *span)
    assert real.cost("crypto", Timeframe.D1, *span).requests == 1
    assert real.cost("crypto", Timeframe.D1, *span).base_bars == (span[1] - span[0]).days + 1
    assert real.cost("crypto", Timeframe.M1, *span).requests == -(-((span[1] - span[0]).days + 1) * 1440 // 50_000)


def test_a_range_without_a_trade_still_costs_its_first_request():
    assert Accounting().cost("forex", Timeframe.M1, SATURDAY, SATURDAY).requests == 1
    assert Accounting().cost("forex", Timeframe.M1, SATURDAY, SATURDAY).base_bars == 0
    assert Accounting().cost("forex", Timeframe.M1, DAY, DAY - dt.timedelta(days=1)).requests == 0


def test_pages_hold_whole_bars():
    assert pages_of(np.array([40, 40, 40]), 100) == 2
    assert pages_of(np.array([100, 1]), 100) == 2
    assert pages_of(np.array([250]), 100) == 1
    assert pages_of(np.array([], dtype=int), 100) == 0
