"""Partition ranges of the New York close timeframes: which keys a UTC day range touches, and the base
days a run needs so that no session is resampled from part of its minutes."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from massive_pipeline.candles.partitions import partition_key_of, partitions_for, planned_ranges
from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.timeframes import Timeframe

CATALOG = parse_catalog(
    "symbols:\n"
    "  - {symbol: EURUSD, ticker: 'C:EURUSD', asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}\n"
    "  - {symbol: BTCUSD, ticker: 'X:BTCUSD', asset_class: crypto, priority: critical, calendar: crypto, start: 2025-06-01}\n"
)


def test_new_york_partitions_are_17_to_17_new_york_and_keyed_by_the_new_york_date():
    eurusd = CATALOG.get("EURUSD")
    daily = partitions_for(eurusd.start, Timeframe.D1_NY)
    window = daily.time_window_for_partition_key("2026-11-01")  # Sunday: Monday 2 Nov's bar
    assert (pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")) == (
        pd.Timestamp("2026-11-01 22:00", tz="UTC"),
        pd.Timestamp("2026-11-02 22:00", tz="UTC"),
    )
    weekly = partitions_for(eurusd.start, Timeframe.W1_NY).time_window_for_partition_key("2026-10-25")
    assert pd.Timestamp(weekly.end) - pd.Timestamp(weekly.start) == pd.Timedelta(hours=169)
    assert partition_key_of(Timeframe.D1_NY, pd.Timestamp("2026-11-02 21:59", tz="UTC")) == "2026-11-01"
    assert partition_key_of(Timeframe.D1, pd.Timestamp("2026-11-02 21:59", tz="UTC")) == "2026-11-02"


def test_a_range_with_new_york_timeframes_fetches_the_base_of_whole_sessions():
    plan = {
        (r.spec.symbol, r.timeframe): (r.first, r.last)
        for r in planned_ranges(
            CATALOG.select(["EURUSD", "BTCUSD"]),
            [Timeframe.H1, Timeframe.D1_NY],
            dt.date(2026, 10, 26),
            dt.date(2026, 11, 6),
        )
    }
    assert plan == {
        # Sunday 25 Oct's session (Monday's bar) .. Friday 6 Nov's
        ("EURUSD", Timeframe.D1_NY): ("2026-10-25", "2026-11-06"),
        # so the daily job (base and H1 share its range) starts on 25 Oct, the evening the first session
        # opens (21:00 UTC), and ends on the last day asked: never past it
        ("EURUSD", Timeframe.M1): ("2026-10-25", "2026-11-06"),
        ("EURUSD", Timeframe.H1): ("2026-10-25", "2026-11-06"),
        # crypto has no New York convention: its range is the one asked for
        ("BTCUSD", Timeframe.M1): ("2026-10-26", "2026-11-06"),
        ("BTCUSD", Timeframe.H1): ("2026-10-26", "2026-11-06"),
    }
