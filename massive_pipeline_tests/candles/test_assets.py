"""Candle assets end to end: bundled server → Dagster runs → candle store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, instance_for_test

from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore

# a forex week with its weekend: Wed 2026-10-07 .. Tue 2026-10-13
START, END = dt.date(2026, 10, 7), dt.date(2026, 10, 13)
# the New York close timeframes are tested in test_new_york_assets.py
UTC_TIMEFRAMES = [tf for tf in Timeframe if not tf.is_new_york]


def _backfill(symbols, timeframes, start=START, end=END, instance=None):
    catalog = load_catalog()
    defs = build_definitions(catalog)
    specs = [catalog.get(s) for s in symbols]
    if instance is not None:
        return run_candle_backfill(defs, instance, specs, timeframes, start, end)
    with instance_for_test() as inst:
        return run_candle_backfill(defs, inst, specs, timeframes, start, end)


def _window(start=START, end=END) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)


def _pandas_resample(m1: pd.DataFrame, tf: Timeframe) -> pd.DataFrame:
    """The reference: pandas' own resample, with empty buckets dropped."""
    frame = m1.set_index("ts")
    rule = {"W1": "W-MON"}.get(tf.value, tf.pandas_freq)
    kwargs = {"label": "left", "closed": "left"}
    agg = frame.resample(rule, **kwargs).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = frame["open"].resample(rule, **kwargs).count()
    agg = agg[counts > 0]
    if tf is Timeframe.W1:  # W-MON with left labels: bins (Mon, next Mon] shifted; relabel to the Monday start
        agg.index = tf.floor(agg.index + pd.Timedelta(days=7)) - pd.Timedelta(days=7)
    return agg.reset_index()


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def test_partition_replace_is_idempotent(env, database_url):
    _backfill(["EURUSD"], [Timeframe.M1, Timeframe.H1])
    store = CandleStore(database_url)
    first = (store.count("EURUSD", "M1"), store.count("EURUSD", "H1"), store.checksum("EURUSD"))
    assert first[0] > 4 * 1300  # five trading days of minutes, less the thin-hour holes
    _backfill(["EURUSD"], [Timeframe.M1, Timeframe.H1])
    again = (store.count("EURUSD", "M1"), store.count("EURUSD", "H1"), store.checksum("EURUSD"))
    assert again == first
    store.dispose()


def test_changed_provider_data_replaces_old_rows(env, database_url):
    _backfill(["EURUSD"], [Timeframe.M1])
    store = CandleStore(database_url)
    before = store.read("EURUSD", "M1", *_window())
    env.set_faults(revision=1)  # the provider corrects its history
    _backfill(["EURUSD"], [Timeframe.M1])
    after = store.read("EURUSD", "M1", *_window())
    assert len(after) == len(before) == store.count("EURUSD", "M1")  # replaced, not appended
    assert not np.allclose(after["close"].to_numpy(), before["close"].to_numpy())
    # what is stored is exactly what the provider now serves
    from massive_pipeline.massive import MassiveClient

    with MassiveClient(env.url, "test-key-123") as client:
        served = client.get_aggregates("C:EURUSD", 1, "minute", *_window()).bars
    assert np.allclose(after["close"].to_numpy(), served["close"].to_numpy())
    store.dispose()


@pytest.mark.parametrize("symbol", ["EURUSD", "XAUUSD", "BTCUSD"])
def test_derived_timeframes_equal_pandas_resample(env, database_url, symbol):
    _backfill([symbol], UTC_TIMEFRAMES)
    store = CandleStore(database_url)
    m1 = store.read(symbol, "M1")
    for tf in UTC_TIMEFRAMES:
        if tf is Timeframe.M1:
            continue
        lo, hi = _window()
        if tf is Timeframe.W1:
            lo, hi = Timeframe.W1.floor(lo), Timeframe.W1.floor(hi) + pd.Timedelta(days=7)
        stored = store.read(symbol, tf, lo, hi).reset_index(drop=True)
        expected = _pandas_resample(m1, tf)
        assert list(stored["ts"]) == list(expected["ts"]), tf
        for col in ("open", "high", "low", "close", "volume"):
            assert np.allclose(stored[col].to_numpy(), expected[col].to_numpy()), (tf, col)
    if symbol != "BTCUSD":  # a closed market gives no bars, not zero bars
        saturday = store.read(symbol, "H1", pd.Timestamp("2026-10-10", tz="UTC"), pd.Timestamp("2026-10-11", tz="UTC"))
        assert saturday.empty
        assert (store.read(symbol, "M1")["volume"] > 0).all()
    store.dispose()


def test_fetched_timeframe_comes_from_the_api(env, database_url):
    summaries = _backfill(["SPX500"], [Timeframe.D1])
    store = CandleStore(database_url)
    d1 = store.read("SPX500", "D1")
    # NYSE trades Wed..Fri and Mon..Tue of this window: five daily bars, straight from the API
    assert [ts.date().isoformat() for ts in d1["ts"]] == [
        "2026-10-07", "2026-10-08", "2026-10-09", "2026-10-12", "2026-10-13"
    ]
    assert set(d1["source"]) == {"massive"}
    assert sum(s.api_requests for s in summaries) >= 1
    store.dispose()


def test_runs_are_recorded_with_materialized_partitions(env, database_url):
    with instance_for_test() as instance:
        summaries = _backfill(["EURUSD"], UTC_TIMEFRAMES, instance=instance)
        assert all(s.success for s in summaries)
        assert len(summaries) == 2  # one daily run (M1..D1), one weekly run (W1)
        for tf in UTC_TIMEFRAMES:
            key = AssetKey(["candles", "eurusd", tf.key])
            materialized = instance.get_materialized_partitions(key)
            if tf is Timeframe.W1:
                assert materialized == {"2026-10-05", "2026-10-12"}
            else:
                assert materialized == {(START + dt.timedelta(days=i)).isoformat() for i in range(7)}


def test_thirty_day_backfill_uses_at_most_two_requests(env, database_url):
    start = dt.date(2026, 9, 1)
    summaries = _backfill(["EURUSD"], [Timeframe.M1], start=start, end=start + dt.timedelta(days=29))
    assert env.request_count(kind="aggs") <= 2
    assert sum(s.api_requests for s in summaries) == env.request_count(kind="aggs")
    store = CandleStore(database_url)
    assert store.count("EURUSD", "M1") > 20 * 1300
    store.dispose()
