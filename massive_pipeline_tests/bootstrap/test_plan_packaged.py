"""The packaged catalog's plan, checked against request counts worked out from first principles.

The numbers are the real ones: the packaged history starts on 2025-01-01 and the plan is made for
Wednesday 2026-10-07 12:00 UTC, so W1's 730 days reach back to the catalog's start: in minutes
for crypto (its provider days are US/Eastern), in one day request elsewhere, W1 resampled from
D1 (forex and metals: a bootstrap fill of the D1 days older than M1's 180; indices: D1 fetched). Forex minutes
are counted here from the market's rules (Sunday 17:00 to Friday 17:00 New York, New Year's Day
and Christmas closed), not through the pipeline's calendar; crypto trades every minute.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.bootstrap.plan import Rate, plan_bootstrap
from massive_pipeline.bootstrap.report import plan_lines
from massive_pipeline.bootstrap.requirements import BOOTSTRAP_TIMEFRAMES
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe

NOW = pd.Timestamp("2026-10-07 12:00", tz="UTC")
TODAY = NOW.date()
LIMIT = 50_000
START = dt.date(2025, 1, 1)


def forex_minutes(first: dt.date, last: dt.date) -> int:
    """Trading minutes of spot forex in the UTC days first..last, from the rules themselves."""
    utc = pd.date_range(pd.Timestamp(first, tz="UTC"), pd.Timestamp(last + dt.timedelta(days=1), tz="UTC"),
                        freq="min", inclusive="left")
    wall = utc.tz_convert("America/New_York").tz_localize(None)
    weekday, minute = wall.dayofweek.to_numpy(), (wall.hour * 60 + wall.minute).to_numpy()
    open_ = (weekday <= 3) | ((weekday == 4) & (minute < 17 * 60)) | ((weekday == 6) & (minute >= 17 * 60))
    trading_day = (wall + pd.Timedelta(hours=7)).normalize()  # the day that closes at 17:00
    holiday = ((trading_day.month == 1) & (trading_day.day == 1)) | ((trading_day.month == 12) & (trading_day.day == 25))
    return int(np.sum(open_ & ~np.asarray(holiday)))


def minute_requests(minutes: int) -> int:
    return max(1, math.ceil(minutes / LIMIT))


def days_back(days: int) -> dt.date:
    return max(TODAY - dt.timedelta(days=days - 1), START)


@pytest.fixture(scope="module")
def plan():
    catalog = load_catalog()
    return plan_bootstrap(list(catalog), BOOTSTRAP_TIMEFRAMES, NOW, Rate(5, 60.0, 1))


@pytest.fixture(autouse=True, scope="module")
def packaged_catalog():
    """The packaged catalog, whatever MASSIVE_CATALOG the environment sets."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MASSIVE_CATALOG", raising=False)
        yield


def by_symbol(plan, symbol):
    return next(s for s in plan.symbols if s.spec.symbol == symbol)


REQUIRED = {Timeframe.M1: 7, Timeframe.M5: 14, Timeframe.M15: 30, Timeframe.M30: 30, Timeframe.H1: 90,
            Timeframe.H4: 180, Timeframe.D1: 365, Timeframe.W1: 730}


def test_a_forex_pair_fills_old_d1_days_from_day_aggregates_and_keeps_minutes_for_h4_only(plan):
    gbpusd = by_symbol(plan, "GBPUSD")
    assert gbpusd.spec.fetch == ()  # the catalog fetches nothing but M1: every refresh is one request
    series = [(s.timeframe, s.source, s.first_key, s.last_key, s.requests) for s in gbpusd.series]
    m1_first = days_back(180)
    m1_requests = minute_requests(forex_minutes(m1_first, TODAY))
    # M1 over H4's 180 days; D1 over W1's 730 (clipped to the start): the days before M1's first
    # one day-aggregate request, the rest derived from M1; W1 resampled from D1
    assert series[0] == (Timeframe.M1, "base", m1_first.isoformat(), TODAY.isoformat(), m1_requests)
    assert series[6:] == [
        (Timeframe.D1, "days", START.isoformat(), (m1_first - dt.timedelta(days=1)).isoformat(), 1),
        (Timeframe.D1, "derived", m1_first.isoformat(), TODAY.isoformat(), 0),
        (Timeframe.W1, "derived", "2024-12-30", "2026-10-05", 0),
    ]
    assert gbpusd.spec.derived_from(Timeframe.W1) is Timeframe.D1
    assert gbpusd.requests == gbpusd.catalog_requests == m1_requests + 1 == 5
    assert gbpusd.all_from_base == minute_requests(forex_minutes(START, TODAY)) == 14
    # fetching D1 at every refresh would save nothing more: the cheapest setting is the catalog's
    assert gbpusd.best == type(gbpusd.best)((), 5)
    # the fill is a run of its own carrying its run config; the D1 days from M1's first day are
    # derived in the run that fetches M1; W1 runs last
    fill, m1_run = gbpusd.runs[0], gbpusd.runs[1]
    assert (fill.timeframes, fill.requests, fill.provider_days_before) == ([Timeframe.D1], 1, m1_first.isoformat())
    assert Timeframe.M1 in m1_run.timeframes and Timeframe.D1 in m1_run.timeframes and not m1_run.provider_days_before
    jobs = [r.job_name for r in gbpusd.runs]
    assert jobs[-1].startswith("candles_weekly") and all(j.startswith("candles_daily") for j in jobs[:-1])


def test_a_critical_pair_fills_its_day_history_too(plan):
    eurusd = by_symbol(plan, "EURUSD")
    assert [s.source for s in eurusd.series] == ["base"] + ["derived"] * 5 + ["days", "derived", "derived"]
    assert eurusd.requests == minute_requests(forex_minutes(days_back(180), TODAY)) + 1 == 5
    # each series over its own days: the minute-based ones count minutes (H1, H4 too), D1 and W1 one request
    own = sum(minute_requests(forex_minutes(days_back(REQUIRED[tf]), TODAY))
              for tf in (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1, Timeframe.H4)) + 2
    assert eurusd.own_days == own == 12


def test_crypto_derives_d1_and_w1_because_its_day_bars_are_us_eastern(plan):
    btcusd = by_symbol(plan, "BTCUSD")
    base = minute_requests(((TODAY - START).days + 1) * 1440)
    assert base == 19
    assert btcusd.requests == btcusd.all_from_base == btcusd.best.requests == base
    assert btcusd.best.fetch == ()  # its provider D1 is not the store's D1 either
    assert btcusd.own_days == sum(minute_requests(REQUIRED[tf] * 1440) for tf in
                                  (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M30, Timeframe.H1,
                                   Timeframe.H4)) + 2 == 15


def test_the_catalog_plan_costs_less_than_both_references_and_is_printed(plan):
    assert plan.requests == plan.catalog_requests  # nothing stored
    # the acceptance: at most every series over its own days, less than everything from M1
    assert plan.requests <= plan.own_days and plan.requests < plan.all_from_base
    assert (plan.requests, plan.own_days, plan.all_from_base) == (359, 567, 653)
    # the 32 forex and metal pairs fill their day history; the 4 indices fetch D1 per catalog
    filling = [s for s in plan.symbols if any(x.source == "days" for x in s.series)]
    assert len(filling) == 32 and not any(Timeframe.D1 in s.spec.fetch for s in filling)
    assert {s.spec.asset_class.value for s in filling} == {"forex", "metal"}
    for sp in filling:
        series = {s.timeframe: s for s in sp.series if s.source != "days"}
        assert series[Timeframe.M1].first_key == days_back(180).isoformat()
        assert sp.catalog_requests == series[Timeframe.M1].requests + 1 < sp.all_from_base
    crypto = [s for s in plan.symbols if s.spec.asset_class.value == "crypto"]
    assert crypto and all(s.catalog_requests == s.all_from_base for s in crypto)
    assert plan.best_requests == plan.catalog_requests
    text = "\n".join(plan_lines(plan))
    assert f"this catalog                                     {plan.catalog_requests:>6}" in text
    assert f"everything derived from the base (M1)            {plan.all_from_base:>6}" in text
    assert f"each series fetched over its own required days   {plan.own_days:>6}" in text
    assert "fetched (days)" in text
    assert "catalog `fetch:` changes" not in text  # nothing cheaper to set in the catalog
    assert f"{plan.requests} API request(s)" in text
