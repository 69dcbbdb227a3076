"""Acceptance of the New York close convention: EURUSD and XAUUSD M1 + D1_NY + W1_NY materialized from
the bundled server over two forex weeks that cross the US DST change (Sunday 1 November 2026), on SQLite
and PostgreSQL. The expectation is an independent resample of the stored M1 bars, grouped with pandas on
New York wall-clock days that start at 17:00, not the pipeline's own grid code."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from dagster import AssetKey, instance_for_test

from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore

# Monday 26 Oct .. Friday 6 Nov 2026: New York moves from EDT (UTC-4) to EST (UTC-5) on Sunday 1 Nov
START, END = dt.date(2026, 10, 26), dt.date(2026, 11, 6)
NY = "America/New_York"
OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def _session_days(ts: pd.Series) -> pd.Series:
    """The New York trading day of each UTC instant: the wall-clock date of (New York time - 17 h)."""
    wall = ts.dt.tz_convert(NY).dt.tz_localize(None)
    return (wall - pd.Timedelta(hours=17)).dt.normalize()


def _expected(m1: pd.DataFrame, weekly: bool) -> pd.DataFrame:
    """D1_NY (or W1_NY) bars by hand: group the M1 bars by trading day (or the Sunday starting its
    week), stamp each group at 17:00 New York on its first day, in UTC."""
    day = _session_days(m1["ts"])
    if weekly:
        day = day - pd.to_timedelta((day.dt.dayofweek + 1) % 7, unit="D")
    grouped = m1.groupby(day.to_numpy()).agg(OHLCV)
    stamps = (grouped.index + pd.Timedelta(hours=17)).tz_localize(NY).tz_convert("UTC")
    return grouped.set_axis(stamps).rename_axis("ts").reset_index()


# the end of the last partition the range materializes: D1_NY key 2026-11-06 (Friday's session,
# empty), W1_NY key 2026-11-01; the base holds the asked days and the evening before them
RANGE_END = {
    Timeframe.D1_NY: pd.Timestamp("2026-11-07 22:00", tz="UTC"),
    Timeframe.W1_NY: pd.Timestamp("2026-11-08 22:00", tz="UTC"),
}


def test_d1_ny_and_w1_ny_of_forex_and_metals_across_the_dst_change(pipeline_env, monkeypatch, database_url):
    """One materialization (it takes a while), every property of the acceptance checked on it."""
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    catalog = load_catalog()
    specs = [catalog.get("EURUSD"), catalog.get("XAUUSD")]
    with instance_for_test() as instance:
        summaries = run_candle_backfill(
            build_definitions(catalog),
            instance,
            specs,
            [Timeframe.M1, Timeframe.D1_NY, Timeframe.W1_NY],
            START,
            END,
        )
        keys = {
            (spec.symbol, tf): instance.get_materialized_partitions(
                AssetKey(["candles", spec.key_prefix, tf.key])
            )
            for spec in specs
            for tf in (Timeframe.M1, Timeframe.D1_NY, Timeframe.W1_NY)
        }
    assert all(s.success for s in summaries)  # the blocking check (schema) passed too
    assert sorted((s.symbol, s.job_name.split("_from_")[0]) for s in summaries) == [
        (symbol, job)
        for symbol in ("EURUSD", "XAUUSD")
        for job in ("candles_daily", "candles_daily_ny", "candles_weekly_ny")
    ]
    store = CandleStore(database_url)
    try:
        for symbol in ("EURUSD", "XAUUSD"):
            _assert_five_bars_a_week(store, symbol)
            for tf in (Timeframe.D1_NY, Timeframe.W1_NY):
                _assert_equal_to_resample(store, symbol, tf)
            _assert_partition_keys(keys, symbol)
        _assert_first_session_whole(store)
        _assert_metals_break(store)
    finally:
        store.dispose()


def _assert_five_bars_a_week(store: CandleStore, symbol: str) -> None:
    d1 = store.read(symbol, "D1_NY")
    # Monday's bar opens on Sunday 17:00 New York: 21:00 UTC in EDT, 22:00 UTC from 1 Nov (EST); no
    # Sunday stub, no Friday or Saturday bar
    assert [ts.isoformat() for ts in d1["ts"]] == [
        *(f"2026-10-{d}T21:00:00+00:00" for d in (25, 26, 27, 28, 29)),
        *(f"2026-11-0{d}T22:00:00+00:00" for d in (1, 2, 3, 4, 5)),
    ], symbol
    days = _session_days(d1["ts"])
    week_of = days - pd.to_timedelta((days.dt.dayofweek + 1) % 7, unit="D")
    assert week_of.value_counts().sort_index().tolist() == [5, 5], symbol


def _assert_equal_to_resample(store: CandleStore, symbol: str, tf: Timeframe) -> None:
    m1 = store.read(symbol, "M1")
    expected = _expected(m1, weekly=tf is Timeframe.W1_NY)
    expected = expected[expected["ts"] < RANGE_END[tf]].reset_index(drop=True)
    got = store.read(symbol, tf).reset_index(drop=True)
    assert got["ts"].tolist() == expected["ts"].tolist(), (symbol, tf)
    for column in OHLCV:
        assert np.allclose(got[column].to_numpy(), expected[column].to_numpy()), (symbol, tf, column)
    if tf is Timeframe.W1_NY:  # the week of 25 Oct is 169 hours: it ends at the EST open of 1 Nov
        assert [ts.isoformat() for ts in got["ts"]] == [
            "2026-10-25T21:00:00+00:00",
            "2026-11-01T22:00:00+00:00",
        ]


def _assert_partition_keys(keys: dict, symbol: str) -> None:
    # the sessions overlapping the UTC days: from Sunday 25 Oct's (Monday's bar) to Friday 6 Nov's
    assert keys[(symbol, Timeframe.D1_NY)] == {
        (dt.date(2026, 10, 25) + dt.timedelta(days=i)).isoformat() for i in range(13)
    }
    assert keys[(symbol, Timeframe.W1_NY)] == {"2026-10-25", "2026-11-01"}
    # and the base: from the evening before the first session (25 Oct) to the last day asked (6 Nov),
    # never past it (the week still open then is built from the bars up to it)
    assert (min(keys[(symbol, Timeframe.M1)]), max(keys[(symbol, Timeframe.M1)])) == (
        "2026-10-25",
        "2026-11-06",
    )


def _assert_first_session_whole(store: CandleStore) -> None:
    """The backfill of UTC days 26 Oct .. 6 Nov fetched M1 from the evening of 25 Oct, when Monday 26's
    session opened, so the first bar is whole: it opens with the first minute of the week."""
    m1 = store.read("EURUSD", "M1")
    first_session = m1[_session_days(m1["ts"]) == pd.Timestamp("2026-10-25")]
    assert first_session["ts"].iloc[0] == pd.Timestamp("2026-10-25 21:00", tz="UTC")
    assert store.read("EURUSD", "D1_NY")["open"].iloc[0] == first_session["open"].iloc[0]


def _assert_metals_break(store: CandleStore) -> None:
    m1 = store.read("XAUUSD", "M1")
    first_minutes = m1.groupby(_session_days(m1["ts"]).to_numpy())["ts"].min()
    # the daily 17:00-18:00 New York break: each session's first minute is 18:00 New York ...
    assert {t.tz_convert(NY).strftime("%H:%M") for t in first_minutes} == {"18:00"}
    # ... and its bar still starts at the 17:00 boundary
    assert {t.tz_convert(NY).strftime("%H:%M") for t in store.read("XAUUSD", "D1_NY")["ts"]} == {"17:00"}
