"""The month ledger on real SQLite and PostgreSQL: after every kind of write, delete and retention
the store makes (new windows, revisions, short answers kept and removed, protected bars, a month
boundary, delete_before, retire dropping months, concurrent writers of one month) it equals a
GROUP BY over the stored rows exactly, and what retention reports removed is what went."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from massive_pipeline.store import CandleStore, month_rows
from massive_pipeline.store.schema import candles

JAN, FEB, MAR, APR = (pd.Timestamp(f"2026-{m:02d}-01", tz="UTC") for m in (1, 2, 3, 4))
LATER = APR + pd.Timedelta(days=60)  # every bar written below is complete


def _bars(start: pd.Timestamp, end: pd.Timestamp, freq: str = "min", shift: float = 0.0) -> pd.DataFrame:
    stamps = pd.date_range(start, end, freq=freq, inclusive="left")
    price = np.linspace(1.0, 2.0, len(stamps)) + shift
    return pd.DataFrame({"ts": stamps, "open": price, "high": price + 0.01, "low": price - 0.01, "close": price,
                         "volume": 1.0})


def _truth(store: CandleStore) -> pd.DataFrame:
    """Rows per (symbol, timeframe, UTC month) counted from `candles` itself, in the ledger's frame."""
    if store.dialect == "postgresql":
        query = ("SELECT symbol, timeframe, date_trunc('month', ts, 'UTC') AS month, count(*) FROM candles "
                 "GROUP BY 1, 2, 3")
    else:  # no date functions needed: the months are computed from the timestamps below
        query = "SELECT symbol, timeframe, ts, 1 FROM candles"
    with store.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(sa.text(query)).all(), columns=["symbol", "timeframe", "month", "rows"])
    if store.dialect == "sqlite":
        months = pd.to_datetime(frame["month"], unit="ms").dt.to_period("M").dt.to_timestamp()
        frame = frame.assign(month=months.dt.tz_localize("UTC")).groupby(
            ["symbol", "timeframe", "month"], as_index=False)["rows"].sum()
    frame["month"] = pd.to_datetime(frame["month"], utc=True).dt.as_unit("ns")
    frame["rows"] = frame["rows"].astype("int64")
    return frame.sort_values(["symbol", "timeframe", "month"]).reset_index(drop=True)


def assert_ledger_exact(store: CandleStore) -> None:
    pd.testing.assert_frame_equal(store.rows_by_month(), _truth(store))


@pytest.fixture
def store(database_url):
    with CandleStore(database_url) as store:
        store.create_schema()
        yield store


def test_month_counts_split_timestamps_by_utc_month():
    ts = pd.DatetimeIndex(["2026-01-31 23:59", "2026-02-01 00:00", "2026-02-28 12:00", "2026-04-01"], tz="UTC")
    months, counts = month_rows.month_counts(ts.as_unit("ns").asi8)
    assert pd.to_datetime(months, utc=True).tolist() == [JAN, FEB, APR] and counts.tolist() == [1, 2, 1]
    months, delta = month_rows.changes(ts.as_unit("ns").asi8[1:], ts.as_unit("ns").asi8[:2])
    assert pd.to_datetime(months, utc=True).tolist() == [JAN, FEB, APR] and delta.tolist() == [-1, 1, 1]


def test_month_counts_agree_with_a_calendar_conversion_of_every_stamp():
    stamps = np.sort(np.random.default_rng(1).integers(-10**18, 2 * 10**18, 5000))  # 1938 .. 2033, sparse
    months, counts = month_rows.month_counts(stamps)
    expected, per_month = np.unique(stamps.view("datetime64[ns]").astype("datetime64[M]"), return_counts=True)
    assert months.tolist() == expected.astype("datetime64[ns]").view(np.int64).tolist()
    assert counts.tolist() == per_month.tolist()


def test_the_ledger_equals_the_stored_rows_after_every_kind_of_change(store):
    start, end = JAN + pd.Timedelta(days=30), FEB + pd.Timedelta(days=1)  # across a month boundary
    bars = _bars(start, end)
    store.write_window("EURUSD", "M1", start, end, bars, now=LATER)  # a new window
    store.write_window("GBPUSD", "H1", JAN, MAR + pd.Timedelta(days=3), _bars(JAN, MAR + pd.Timedelta(days=3), "h"),
                       now=LATER)
    assert_ledger_exact(store)

    revised = store.write_window("EURUSD", "M1", start, end, bars.assign(close=bars["close"] + 1e-4), now=LATER)
    assert revised.rows_revised == len(bars)
    assert_ledger_exact(store)

    short = bars.iloc[::3]  # a short answer: the bars it lacks are kept ...
    kept = store.write_window("EURUSD", "M1", start, end, short, now=LATER)
    assert kept.rows_missing_from_answer > 0 and kept.rows_removed == 0
    assert_ledger_exact(store)
    removed = store.write_window("EURUSD", "M1", start, end, short, now=LATER, accept_removals=True)  # ... or go
    assert removed.rows_removed == len(bars) - len(short)
    assert_ledger_exact(store)

    protected = store.write_window("EURUSD", "M1", start, end, bars, now=LATER, protect_before=FEB)
    assert protected.rows_kept_protected > 0
    assert_ledger_exact(store)
    empty = store.write_window("EURUSD", "M1", FEB, end, bars.iloc[:0], now=LATER, accept_removals=True)
    assert empty.rows_deleted == 24 * 60  # a whole month's share of the window gone
    assert_ledger_exact(store)

    assert store.delete_before("GBPUSD", "H1", FEB + pd.Timedelta(days=10), batch_size=100) == (31 + 10) * 24
    assert_ledger_exact(store)

    store.write_window("XAUUSD", "M1", JAN, MAR, _bars(JAN, MAR, "h"), now=LATER)
    cutoff = FEB + pd.Timedelta(days=14)
    before = {s: store.count(s, "M1", end=cutoff) for s in ("EURUSD", "XAUUSD")}
    got = store.retire("M1", cutoff, ["EURUSD", "XAUUSD"], batch_size=50)  # PostgreSQL: January dropped whole
    assert got == {s: n for s, n in before.items() if n}
    assert all(store.count(s, "M1", end=cutoff) == 0 for s in before)
    assert_ledger_exact(store)
    assert not (store.rows_by_month().query("timeframe == 'M1'")["month"] < FEB).any()


def test_two_writers_of_one_month_lose_no_increment(database_url, store):
    days = [MAR + pd.Timedelta(days=d) for d in range(8)]
    barrier, errors = threading.Barrier(2), []

    def write(mine: list[pd.Timestamp]) -> None:
        with CandleStore(database_url) as own:
            try:
                barrier.wait(timeout=30)
                for day in mine:  # different days of one series and month, writer against writer
                    nxt = day + pd.Timedelta(days=1)
                    own.write_window("EURUSD", "M5", day, nxt, _bars(day, nxt, "5min"), now=LATER)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

    threads = [threading.Thread(target=write, args=(days[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    ledger = store.rows_by_month()
    assert ledger[["symbol", "timeframe", "month", "rows"]].values.tolist() == [["EURUSD", "M5", MAR, 8 * 288]]
    assert_ledger_exact(store)


def test_retention_reports_the_rows_that_really_went_per_symbol(store):
    sizes = {"AUDUSD": "h", "EURUSD": "30min", "USDJPY": "2h"}
    for symbol, freq in sizes.items():
        store.write_window(symbol, "M1", JAN, APR, _bars(JAN, APR, freq), now=LATER)
    store.write_window("EURUSD", "H1", JAN, APR, _bars(JAN, APR, "h"), now=LATER)
    cutoff = MAR + pd.Timedelta(days=3, hours=5)
    with store.engine.connect() as conn:
        stored_before = dict(conn.execute(sa.select(candles.c.symbol, sa.func.count()).where(
            candles.c.timeframe == "M1").group_by(candles.c.symbol)).all())

    removed = store.retire("M1", cutoff, list(sizes), batch_size=100)

    with store.engine.connect() as conn:
        stored_after = dict(conn.execute(sa.select(candles.c.symbol, sa.func.count()).where(
            candles.c.timeframe == "M1").group_by(candles.c.symbol)).all())
    assert removed == {s: stored_before[s] - stored_after[s] for s in sizes}
    assert all(n > 0 for n in removed.values())
    assert store.count("EURUSD", "H1") == 90 * 24  # other timeframes untouched
    assert_ledger_exact(store)


def test_a_failed_write_leaves_the_ledger_as_it_was(store, monkeypatch):
    store.write_window("EURUSD", "M1", JAN, JAN + pd.Timedelta(days=1), _bars(JAN, JAN + pd.Timedelta(days=1)),
                       now=LATER)
    ledger = store.rows_by_month()

    def fail(*_args, **_kwargs):
        raise RuntimeError("the write dies after the ledger was changed")

    monkeypatch.setattr("massive_pipeline.store.candle_store.insert_revisions", fail)
    with pytest.raises(RuntimeError):
        store.write_window("EURUSD", "M1", JAN, FEB + pd.Timedelta(days=1), _bars(JAN, FEB + pd.Timedelta(days=1)),
                           now=LATER, accept_removals=True)
    pd.testing.assert_frame_equal(store.rows_by_month(), ledger)
    assert_ledger_exact(store)
