"""The plan of one symbol: derived series widen the base, what is stored is left out, and a
partition whose base is fetched again is derived again."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance

from massive_pipeline.bootstrap.coverage import StoredCoverage
from massive_pipeline.bootstrap.plan import plan_symbol
from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.resample import resample_bars
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.bootstrap.test_coverage import minutes

CATALOG = parse_catalog("""\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2026-01-01}
  - {symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: 2026-01-01,
     fetch: [D1, W1]}
""")
NOW = pd.Timestamp("2026-10-07 12:00", tz="UTC")


def test_the_base_is_fetched_over_the_longest_need_of_what_derives_from_it():
    plan = plan_symbol(CATALOG.get("BTCUSD"), [Timeframe.M5, Timeframe.H1], NOW)
    base, m5, h1 = plan.series
    assert (base.timeframe, base.source, base.first_key, base.last_key) == (Timeframe.M1, "base", "2026-07-10",
                                                                             "2026-10-07")
    assert (m5.first_key, h1.first_key) == ("2026-09-24", "2026-07-10")
    assert base.requests == -(-90 * 1440 // 50_000) == 3
    assert plan.notes == ("M1 is fetched (not asked) because M5, H1 derive from it",)
    # M1 over H1's 90 days, then M5 and H1 in runs of their own ranges
    assert [(r.timeframes, r.first, r.requests) for r in plan.runs] == [
        ([Timeframe.M1, Timeframe.H1], "2026-07-10", 3), ([Timeframe.M5], "2026-09-24", 0)]


def test_fetched_day_and_week_bars_leave_the_base_the_intraday_needs():
    plan = plan_symbol(CATALOG.get("SPX500"), [Timeframe.H4, Timeframe.D1, Timeframe.W1], NOW)
    sources = {s.timeframe: (s.source, s.requests) for s in plan.series}
    assert sources == {Timeframe.M1: ("base", 1), Timeframe.H4: ("derived", 0), Timeframe.D1: ("fetch", 1),
                       Timeframe.W1: ("fetch", 1)}
    assert plan.requests == 3 and plan.all_from_base == 2  # 2026-01-01.. of index minutes: two pages


@pytest.fixture
def world(tmp_path):
    with CandleStore(f"sqlite:///{tmp_path}/c.sqlite") as store, DagsterInstance.ephemeral() as instance:
        store.create_schema()
        yield store, instance


def test_a_resumed_plan_fetches_only_what_is_missing_and_derives_again_what_it_refetches(world):
    store, instance = world
    spec = CATALOG.get("BTCUSD")
    # the base holds 2026-09-28..10-05 (recorded); H1 was derived for 09-28..10-06 (recorded)
    bars = minutes("2026-09-28", "2026-10-06")
    store.write_window("BTCUSD", Timeframe.M1, bars["ts"].iloc[0], pd.Timestamp("2026-10-06", tz="UTC"), bars,
                       now=pd.Timestamp("2026-11-01", tz="UTC"))
    store.write_window("BTCUSD", Timeframe.H1, pd.Timestamp("2026-09-28", tz="UTC"),
                       pd.Timestamp("2026-10-07", tz="UTC"), resample_bars(bars, Timeframe.H1),
                       now=pd.Timestamp("2026-11-01", tz="UTC"))
    days = [(dt.date(2026, 9, 28) + dt.timedelta(days=i)).isoformat() for i in range(10)]
    for tf, keys in ((Timeframe.M1, days[:8]), (Timeframe.H1, days[:9])):
        for key in keys:
            instance.report_runless_asset_event(
                AssetMaterialization(AssetKey(["candles", "btcusd", tf.key]), partition=key))
    plan = plan_symbol(spec, [Timeframe.M1, Timeframe.H1], NOW, coverage=StoredCoverage(instance, store))
    m1, h1 = plan.series
    assert m1.first_key == "2026-07-10" and m1.stored == 8
    assert m1.pending == (("2026-07-10", "2026-09-27"), ("2026-10-06", "2026-10-07"))
    # H1 of 10-06 was stored, but its base bars are fetched again: derived again with them
    assert h1.pending == (("2026-07-10", "2026-09-27"), ("2026-10-06", "2026-10-07"))
    assert m1.requests == -(-80 * 1440 // 50_000) + 1 == 4
    assert [(r.first, r.last, r.requests) for r in plan.runs] == [("2026-07-10", "2026-09-27", 3),
                                                                 ("2026-10-06", "2026-10-07", 1)]
