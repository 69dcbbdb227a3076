"""Which provider bars are the store's bars, and the computed partition keys against Dagster's."""

from __future__ import annotations

import datetime as dt

import pytest

from massive_pipeline.bootstrap.cuts import fetch_mismatch
from massive_pipeline.bootstrap.keys import key_window, keys_between
from massive_pipeline.bootstrap.plan import Rate
from massive_pipeline.candles.partitions import partition_range, partitions_for, window_bounds
from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.timeframes import Timeframe

CATALOG = parse_catalog("""\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-01-01}
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: high, calendar: metals, start: 2025-01-01}
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2025-01-01}
  - {symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: 2025-01-01}
  - {symbol: DAX40, ticker: "I:DAX", asset_class: index, priority: medium, calendar: xetra, start: 2025-01-01}
""")
SPAN = (dt.date(2026, 1, 1), dt.date(2026, 6, 30))  # holds both 2026 DST changes


@pytest.mark.parametrize(("symbol", "d1", "w1"), [
    ("EURUSD", True, False),  # UTC days; Sunday evening's open starts the provider's week, ends the store's
    ("XAUUSD", True, False),
    ("BTCUSD", False, False),  # US/Eastern days and weeks
    ("SPX500", True, True),  # the session lies inside every cut
    ("DAX40", True, True),
])
def test_provider_day_and_week_bars_are_the_stores_only_where_the_cuts_group_alike(symbol, d1, w1):
    spec = CATALOG.get(symbol)
    assert (fetch_mismatch(spec, Timeframe.D1, *SPAN) is None) is d1
    assert (fetch_mismatch(spec, Timeframe.W1, *SPAN) is None) is w1
    assert fetch_mismatch(spec, Timeframe.H4, *SPAN) is None


def test_the_mismatch_says_what_to_do():
    reason = fetch_mismatch(CATALOG.get("BTCUSD"), Timeframe.D1, *SPAN)
    assert reason is not None and "America/New_York" in reason and "derive D1 from the base" in reason


@pytest.mark.parametrize("tf", [Timeframe.M1, Timeframe.D1, Timeframe.W1, Timeframe.D1_NY, Timeframe.W1_NY])
@pytest.mark.parametrize(("first", "last"), [(dt.date(2025, 1, 1), dt.date(2025, 3, 20)),
                                             (dt.date(2024, 12, 1), dt.date(2025, 1, 8))])
def test_computed_keys_and_windows_are_dagsters(tf, first, last):
    spec = CATALOG.get("EURUSD")
    pdef = partitions_for(spec.start, tf)
    a, b = partition_range(spec, tf, max(first, spec.start), last)
    keys = pdef.get_partition_keys()
    assert keys_between(spec, tf, first, last) == keys[keys.index(a): keys.index(b) + 1]
    for key in (a, b):
        assert key_window(spec, tf, key) == window_bounds(pdef.time_window_for_partition_key(key))


def test_eta_spends_the_bulk_budget_a_window_at_a_time():
    rate = Rate(5, 60.0, 1)
    assert rate.eta(4) == dt.timedelta(0)
    assert rate.eta(5) == dt.timedelta(minutes=1)
    assert rate.eta(709) == dt.timedelta(minutes=177)
