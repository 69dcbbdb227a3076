"""Forex and metals holidays: 25 December and 1 January for both, Good Friday for metals.

A holiday closes its New York trading day, 17:00 New York the day before to 17:00 New York on
the day (calendars module docstring). The UTC instants below are written out by hand: December
and January are EST (UTC-5), so 17:00 New York is 22:00 UTC and metals reopen at 18:00 = 23:00
UTC; Good Friday is always EDT (UTC-4): 17:00 New York is 21:00 UTC, the metals' Sunday open 22:00.
Every consumer is driven through its own public function on fixed dates, never the wall clock.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.core.calendars import MarketCalendar, get_calendar
from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.freshness import assess
from massive_pipeline.operations.queue import CLOSED, DUE, QueueState, order_queue
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.quality import checks
from massive_pipeline.quality.gap_detection import detect_series
from massive_pipeline.quality.gaps import find_gaps
from massive_pipeline.quality.validation import validate_bars
from massive_pipeline.quality.verify import judge
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver.instruments import resolve_instrument
from massive_pipeline.testing.devserver.prices import minute_bars as served

CATALOG = parse_catalog("""\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2020-01-01}
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2020-01-01}
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: critical, calendar: metals, start: 2020-01-01}
  - {symbol: XAGUSD, ticker: "C:XAGUSD", asset_class: metal, priority: high, calendar: metals, start: 2020-01-01}
  - {symbol: ETHUSD, ticker: "X:ETHUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2020-01-01}
""")
HOUR = pd.Timedelta(hours=1)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def closures(cal: MarketCalendar, start: str, end: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(last open minute before, first open minute after) of each closure longer than 2 hours."""
    opened = cal.open_minutes(utc(start), utc(end))
    jumps = np.flatnonzero(np.diff(opened.asi8) > 2 * HOUR.value)
    return [(opened[j], opened[j + 1]) for j in jumps]


def minute_bars(start: str, end: str, *holes: tuple[str, str]) -> pd.DataFrame:
    """A bar for every UTC minute in [start, end) but the holes; closed minutes are not expected anyway."""
    ts = pd.date_range(utc(start), utc(end), freq="min", inclusive="left")
    keep = np.ones(len(ts), dtype=bool)
    for lo, hi in holes:
        keep &= ~((ts >= utc(lo)) & (ts < utc(hi)))
    ts = ts[keep]
    price = np.linspace(1.10, 1.11, len(ts))
    return pd.DataFrame({"ts": ts, "open": price, "high": price + 1e-4, "low": price - 1e-4, "close": price,
                         "volume": 10.0})


@pytest.fixture(scope="module")
def forex() -> MarketCalendar:
    return get_calendar("forex")


@pytest.fixture(scope="module")
def metals() -> MarketCalendar:
    return get_calendar("metals")


# --- where the market is closed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # Wed 2024-12-25 and Wed 2025-01-01: each closes Tue/Wed 22:00 UTC for 24 hours.
        (("2024-12-23", "2024-12-27"), [("2024-12-24 21:59", "2024-12-25 22:00")]),
        (("2024-12-30", "2025-01-03"), [("2024-12-31 21:59", "2025-01-01 22:00")]),
        # Fri 2026-12-25 and Fri 2027-01-01: Thursday's close runs into the weekend.
        (("2026-12-21", "2026-12-29"), [("2026-12-24 21:59", "2026-12-27 22:00")]),
        (("2026-12-28", "2027-01-05"), [("2026-12-31 21:59", "2027-01-03 22:00")]),
        # Sat 2021-12-25 / 2022-01-01: nothing moves to Friday (the CME observes Friday 24th).
        (("2021-12-20", "2021-12-29"), [("2021-12-24 21:59", "2021-12-26 22:00")]),
        (("2021-12-27", "2022-01-05"), [("2021-12-31 21:59", "2022-01-02 22:00")]),
        # Sun 2022-12-25 / 2023-01-01: the Sunday 17:00 New York open starts Monday's day as usual.
        (("2022-12-19", "2022-12-28"), [("2022-12-23 21:59", "2022-12-25 22:00")]),
        (("2022-12-26", "2023-01-04"), [("2022-12-30 21:59", "2023-01-01 22:00")]),
    ],
)
def test_forex_closes_the_new_york_trading_day_of_christmas_and_new_year(forex, window, expected):
    assert closures(forex, *window) == [(utc(a), utc(b)) for a, b in expected]


@pytest.mark.parametrize(("thursday", "friday"), [("2024-03-28", "2024-03-29"), ("2025-04-17", "2025-04-18")])
def test_forex_trades_good_friday(forex, thursday, friday):
    # A plain Friday: open from midnight UTC to the 17:00 EDT (21:00 UTC) close.
    assert len(forex.open_minutes(utc(friday), utc(friday) + pd.Timedelta(days=1))) == 21 * 60
    assert forex.is_open(pd.date_range(utc(thursday), periods=1440, freq="min")).all()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # Wed 2024-12-25: closed from Tuesday's 17:00 close through Wednesday's break, back 18:00 EST.
        (("2024-12-23 23:30", "2024-12-26 12:00"), [("2024-12-24 21:59", "2024-12-25 23:00")]),
        # Thu 2026-01-01: same from Wednesday's close.
        (("2025-12-30 23:30", "2026-01-02 12:00"), [("2025-12-31 21:59", "2026-01-01 23:00")]),
        # Sun 2022-12-25: the weekend as always, reopening Sunday 18:00 EST.
        (("2022-12-23 12:00", "2022-12-26 12:00"), [("2022-12-23 21:59", "2022-12-25 23:00")]),
        # Good Friday 2024-03-29 and 2025-04-18 (EDT): Thursday's 17:00 close to Sunday's 18:00 open.
        (("2024-03-27 23:30", "2024-04-01 12:00"), [("2024-03-28 20:59", "2024-03-31 22:00")]),
        (("2025-04-16 23:30", "2025-04-21 12:00"), [("2025-04-17 20:59", "2025-04-20 22:00")]),
    ],
)
def test_metals_close_christmas_new_year_and_good_friday(metals, window, expected):
    assert closures(metals, *window) == [(utc(a), utc(b)) for a, b in expected]


def test_crypto_trades_through_the_holidays():
    crypto = get_calendar("crypto")
    assert crypto.is_open(pd.date_range(utc("2024-12-24"), utc("2025-01-02"), freq="min")).all()
    assert crypto.is_open(pd.date_range(utc("2024-03-28"), utc("2024-04-01"), freq="min")).all()


def test_holiday_weeks_keep_dst_rules(forex, metals):
    # Good Friday 2024 is three weeks after the US change (EDT) and two days before Europe's:
    # the metals' Thursday break still starts 21:00 UTC and the forex Sunday open is 21:00 UTC.
    assert closures(forex, "2024-03-28", "2024-04-02") == [(utc("2024-03-29 20:59"), utc("2024-03-31 21:00"))]
    assert not metals.is_open_at(utc("2024-03-28 21:00"))
    assert metals.is_open_at(utc("2024-03-28 20:59"))


# --- where the dates come from ---------------------------------------------------------------


def test_holiday_dates_are_the_days_themselves(forex, metals):
    fx = forex.holidays.dates("2000-01-01", "2035-12-31")
    assert {(d.month, d.day) for d in fx} == {(1, 1), (12, 25)} and len(fx) == 72
    mt = metals.holidays.dates("2000-01-01", "2035-12-31")
    assert set(fx) <= set(mt) and len(mt) == 108
    good_fridays = sorted(set(mt) - set(fx))
    # Easter Sunday minus two days, from published Easter tables.
    for day in ("2019-04-19", "2024-03-29", "2025-04-18", "2026-04-03", "2027-03-26", "2035-03-23"):
        assert pd.Timestamp(day) in good_fridays
    assert all(d.dayofweek == 4 for d in good_fridays)


def test_metals_holidays_are_comex_closures_without_the_observance_shift(metals):
    import pandas_market_calendars as mcal

    comex = {pd.Timestamp(d) for d in mcal.get_calendar("CMEGlobex_Metals").holidays().holidays
             if pd.Timestamp("2000-01-01") <= pd.Timestamp(d) <= pd.Timestamp("2035-12-31")}
    ours = set(metals.holidays.dates("2000-01-01", "2035-12-31"))
    # On a weekday the two agree; a COMEX closure we lack is a weekend holiday observed a day off.
    assert {d for d in ours if d.dayofweek < 5} <= comex
    for day in sorted(comex - ours):
        shifted = {day + pd.Timedelta(days=1), day - pd.Timedelta(days=1)} & ours
        assert shifted and all(d.dayofweek >= 5 for d in shifted), day
    assert pd.Timestamp("2021-12-24") in comex - ours and pd.Timestamp("2022-12-26") in comex - ours


# --- gaps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "window", "holiday"),
    [
        ("forex", ("2024-12-23", "2024-12-28"), ("2024-12-24 22:00", "2024-12-25 22:00")),
        ("forex", ("2024-12-30", "2025-01-04"), ("2024-12-31 22:00", "2025-01-01 22:00")),
        ("forex", ("2026-12-21", "2026-12-26"), ("2026-12-24 22:00", "2026-12-25 22:00")),  # Friday
        ("metals", ("2024-12-23", "2024-12-28"), ("2024-12-24 22:00", "2024-12-25 23:00")),
        ("metals", ("2025-12-29", "2026-01-03"), ("2025-12-31 22:00", "2026-01-01 23:00")),  # Thursday
        ("metals", ("2024-03-25", "2024-03-30"), ("2024-03-28 21:00", "2024-03-29 21:00")),  # Good Friday
    ],
)
@pytest.mark.parametrize("tf", [Timeframe.M1, Timeframe.H1])
def test_no_gap_over_a_holiday_but_a_hole_the_day_before_is_one(calendar, window, holiday, tf):
    cal = get_calendar(calendar)
    day_before = (utc(holiday[0]) - pd.Timedelta(days=1)).floor("D")
    hole = (str(day_before + 10 * HOUR), str(day_before + 12 * HOUR))
    silent = minute_bars(*window, holiday)
    assert len(find_gaps(silent["ts"], cal, utc(window[0]), utc(window[1]), Timeframe.M1)) == 0
    bars = minute_bars(*window, holiday, hole)
    present = bars["ts"] if tf is Timeframe.M1 else bars["ts"].dt.floor("h").drop_duplicates()
    gaps = find_gaps(present, cal, utc(window[0]), utc(window[1]), tf)
    assert gaps[["gap_start", "gap_end"]].values.tolist() == [[utc(hole[0]), utc(hole[1])]]
    assert gaps["candles_missing"].tolist() == [120 if tf is Timeframe.M1 else 2]


@pytest.mark.parametrize(
    ("window", "hole"),
    [
        # Christmas on Saturday: Friday 24th trades, so a Friday hole is a gap.
        (("2021-12-23", "2021-12-28"), ("2021-12-24 10:00", "2021-12-24 12:00")),
        # Christmas on Sunday: Monday 26th trades.
        (("2022-12-23", "2022-12-28"), ("2022-12-26 10:00", "2022-12-26 12:00")),
        # Good Friday: forex trades it.
        (("2024-03-27", "2024-04-02"), ("2024-03-29 10:00", "2024-03-29 12:00")),
    ],
)
def test_forex_days_next_to_a_weekend_holiday_and_good_friday_still_have_gaps(forex, window, hole):
    bars = minute_bars(*window, hole)
    gaps = find_gaps(bars["ts"], forex, utc(window[0]), utc(window[1]), Timeframe.M1)
    assert gaps[["gap_start", "gap_end", "candles_missing"]].values.tolist() == [[utc(hole[0]), utc(hole[1]), 120]]


def test_a_hole_up_to_the_close_before_christmas_stops_at_the_close(forex, metals):
    bars = minute_bars("2024-12-23", "2024-12-27", ("2024-12-24 20:00", "2024-12-26 00:00"))
    for cal, reopen in ((forex, "2024-12-25 22:00"), (metals, "2024-12-25 23:00")):
        gaps = find_gaps(bars["ts"], cal, utc("2024-12-23"), utc("2024-12-27"), Timeframe.M1)
        assert gaps[["gap_start", "gap_end"]].values.tolist() == [
            [utc("2024-12-24 20:00"), utc("2024-12-24 22:00")],  # to the 17:00 EST close
            [utc(reopen), utc("2024-12-26 00:00")],  # from the reopening on 25 Dec
        ]


def test_crypto_still_gaps_on_christmas():
    bars = minute_bars("2024-12-24", "2024-12-27", ("2024-12-24 22:00", "2024-12-25 22:00"))
    gaps = find_gaps(bars["ts"], get_calendar("crypto"), utc("2024-12-24"), utc("2024-12-27"), Timeframe.M1)
    assert gaps["candles_missing"].tolist() == [1440]


def test_gap_detection_records_only_the_real_hole(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    spec = CATALOG.get("XAUUSD")
    bars = minute_bars("2024-12-23", "2024-12-28", ("2024-12-24 22:00", "2024-12-25 23:00"),
                       ("2024-12-24 10:00", "2024-12-24 12:00"))
    bars = bars[get_calendar("metals").is_open(bars["ts"])]  # what the provider sends: open minutes only
    store.replace_window("XAUUSD", Timeframe.M1, utc("2024-12-23"), utc("2024-12-28"), bars)
    found = detect_series(store, spec, Timeframe.M1, utc("2024-12-23"), utc("2024-12-28"), 3,
                          (bars["ts"].iloc[0], bars["ts"].iloc[-1]))
    assert found.new == 1
    recorded = store.gaps("XAUUSD", "M1")
    assert recorded[["gap_start", "gap_end", "candles_missing"]].values.tolist() == [
        [utc("2024-12-24 10:00"), utc("2024-12-24 12:00"), 120]
    ]
    assert store.count("XAUUSD", "M1") == len(bars)  # detection touches no stored bar
    store.dispose()


def test_bars_that_do_arrive_on_a_holiday_are_kept_and_not_required(forex):
    thin = minute_bars("2024-12-25 14:00", "2024-12-25 14:05")
    assert len(find_gaps(thin["ts"], forex, utc("2024-12-25"), utc("2024-12-25 22:00"), Timeframe.M1)) == 0
    found = {f.check: f for f in checks.evaluate(_check_input(thin, "forex", "2024-12-25"), {checks.COMPLETE})}
    assert found[checks.COMPLETE].metadata["bars_present"] == 0  # present but not expected: not counted


# --- the complete check ----------------------------------------------------------------------


def _check_input(stored: pd.DataFrame, calendar: str, day: str) -> checks.CheckInput:
    lo = utc(day)
    parts = [checks.PartitionWindow(day, lo, lo + pd.Timedelta(days=1))]
    return checks.CheckInput(Timeframe.M1, get_calendar(calendar), parts, stored.reset_index(drop=True),
                             validate_bars(stored, Timeframe.M1), stored.iloc[:0], now=utc("2025-02-01"))


@pytest.mark.parametrize(
    ("calendar", "day", "silent", "expected"),
    [
        # 25 Dec: only 22:00-23:59 UTC (forex) or 23:00-23:59 (metals) belong to a trading day.
        ("forex", "2024-12-25", ("2024-12-25 00:00", "2024-12-25 22:00"), 120),
        ("metals", "2024-12-25", ("2024-12-25 00:00", "2024-12-25 23:00"), 60),
        # 24 Dec: closes at 22:00 UTC for the holiday (metals: its usual break, then the holiday).
        ("forex", "2024-12-24", ("2024-12-24 22:00", "2024-12-25 00:00"), 1320),
        ("metals", "2024-12-24", ("2024-12-24 22:00", "2024-12-25 00:00"), 1320),
        # Good Friday for metals: nothing expected at all.
        ("metals", "2024-03-29", ("2024-03-29 00:00", "2024-03-30 00:00"), 0),
    ],
)
def test_complete_passes_over_a_holiday(calendar, day, silent, expected):
    end = str(utc(day) + pd.Timedelta(days=1))
    stored = minute_bars(day, end, silent)
    stored = stored[get_calendar(calendar).is_open(stored["ts"])]
    finding = checks.evaluate(_check_input(stored, calendar, day), {checks.COMPLETE})[0]
    assert finding.passed, finding.description
    assert finding.metadata["bars_expected"] == expected == finding.metadata["bars_present"]


def test_complete_still_warns_about_a_hole_on_christmas_eve():
    stored = minute_bars("2024-12-24", "2024-12-25", ("2024-12-24 10:00", "2024-12-24 12:00"),
                         ("2024-12-24 22:00", "2024-12-25 00:00"))
    finding = checks.evaluate(_check_input(stored, "forex", "2024-12-24"), {checks.COMPLETE})[0]
    assert finding.metadata["bars_missing"] == 120 and finding.metadata["bars_expected"] == 1320


# --- freshness: verify, assess, the queue ----------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "last", "now"),
    [
        ("EURUSD", "2024-12-24 21:59", "2024-12-25 12:00"),
        ("EURUSD", "2024-12-31 21:59", "2025-01-01 21:59"),  # a minute before the reopening
        ("XAUUSD", "2024-12-24 21:59", "2024-12-25 12:00"),
        ("XAUUSD", "2024-03-28 20:59", "2024-03-29 12:00"),  # Good Friday
        ("XAUUSD", "2024-03-28 20:59", "2024-03-31 21:59"),  # through the Easter weekend
    ],
)
@pytest.mark.parametrize("tf", [Timeframe.M1, Timeframe.H1])
def test_not_stale_on_a_holiday_with_the_last_bar_at_the_close_before(symbol, last, now, tf):
    spec = CATALOG.get(symbol)
    last_bar = tf.floor(utc(last))
    verdict = judge(spec, tf, 10_000, utc("2020-01-01"), last_bar, utc(now))
    assert verdict.status == "ok", verdict.detail
    assert verdict.behind == pd.Timedelta(0)
    fresh = assess(spec, tf, last_bar, utc(now))
    assert not fresh.stale and not fresh.market_open and fresh.label == "closed"
    assert fresh.trading_day() == utc(last).date()


@pytest.mark.parametrize(
    ("symbol", "last", "now"),
    [
        ("EURUSD", "2024-12-24 09:00", "2024-12-24 12:00"),  # the day before: an ordinary stale series
        ("EURUSD", "2024-03-28 20:59", "2024-03-29 12:00"),  # forex trades Good Friday
        ("EURUSD", "2024-12-24 21:59", "2024-12-25 22:30"),  # after the reopening
        ("ETHUSD", "2024-12-24 21:59", "2024-12-25 12:00"),  # crypto knows no holiday
    ],
)
def test_stale_where_the_market_trades(symbol, last, now):
    spec = CATALOG.get(symbol)
    verdict = judge(spec, Timeframe.M1, 10_000, utc("2020-01-01"), utc(last), utc(now))
    assert verdict.status == "stale", verdict.detail
    assert assess(spec, Timeframe.M1, utc(last), utc(now)).stale


def test_the_queue_leaves_closed_holiday_markets_alone(tmp_path):
    store = CandleStore(f"sqlite:///{tmp_path}/candles.sqlite")
    store.create_schema()
    for symbol, last in (("GBPUSD", "2024-12-24 21:59"), ("XAGUSD", "2024-12-24 21:59"),
                         ("ETHUSD", "2024-12-24 21:59")):
        bars = minute_bars(str(utc(last) - 2 * HOUR + pd.Timedelta(minutes=1)), str(utc(last) + pd.Timedelta(minutes=1)))
        store.replace_window(symbol, Timeframe.M1, bars["ts"].iloc[0], utc(last) + pd.Timedelta(minutes=1), bars)
    now = utc("2024-12-25 12:00")
    specs = [CATALOG.get(s) for s in ("GBPUSD", "XAGUSD", "ETHUSD")]
    entries = order_queue(specs, store, QueueState.from_cursor(None, dt.date(2024, 12, 25)), now, {},
                          OperationsSettings())
    states = {e.symbol: e.state for e in entries}
    assert states == {"GBPUSD": CLOSED, "XAGUSD": CLOSED, "ETHUSD": DUE}
    closed = {e.symbol: e.reason for e in entries if e.state == CLOSED}
    assert all("last bar reaches the close" in reason for reason in closed.values())
    store.dispose()


# --- the bundled server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "silent", "reopen"),
    [
        ("C:EURUSD", ("2024-12-24 22:00", "2024-12-25 22:00"), "2024-12-25 22:00"),
        ("C:XAUUSD", ("2024-12-24 22:00", "2024-12-25 23:00"), "2024-12-25 23:00"),
        ("X:BTCUSD", ("2024-12-25 00:00", "2024-12-25 00:00"), "2024-12-25 00:00"),
    ],
)
def test_the_bundled_server_has_no_quotes_while_the_market_keeps_its_holiday(ticker, silent, reopen):
    bars = served(resolve_instrument(ticker), utc("2024-12-24").value // 10**6, utc("2024-12-27").value // 10**6)
    ts = pd.to_datetime(bars.t, unit="ms", utc=True)
    assert not ((ts >= utc(silent[0])) & (ts < utc(silent[1]))).any()
    assert ((ts >= utc(reopen)) & (ts < utc(reopen) + HOUR)).sum() > 30  # thin, but back within the hour
