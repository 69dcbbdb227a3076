"""The PostgreSQL store's partitions (revision 0006) on the real server: months made by the write path,
reads across them, retention dropping whole months, concurrent writers at a new month, and the
upgrade of a revision-0005 store keeping every row (and the downgrade giving the plain table back)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from massive_pipeline.store import CandleStore, migrate, partitions
from massive_pipeline.store.schema import candles

JAN, FEB, MAR, APR = (pd.Timestamp(f"2026-{m:02d}-01", tz="UTC") for m in (1, 2, 3, 4))
MIN = pd.Timedelta(minutes=1)


def _bars(start: pd.Timestamp, end: pd.Timestamp, freq: str = "min") -> pd.DataFrame:
    stamps = pd.date_range(start, end, freq=freq, inclusive="left")
    price = np.linspace(1.0, 2.0, len(stamps))
    return pd.DataFrame({"ts": stamps, "open": price, "high": price + 0.01, "low": price - 0.01, "close": price,
                         "volume": 1.0})


def _put(store: CandleStore, symbol: str, tf: str, start: pd.Timestamp, end: pd.Timestamp, freq: str) -> None:
    store.replace_window(symbol, tf, start, end, _bars(start, end, freq), now=APR + pd.Timedelta(days=60))


def _insert(store: CandleStore, symbol: str, tf: str, start: pd.Timestamp, end: pd.Timestamp, freq: str) -> None:
    """Rows put in by plain SQL: the store's write path needs the head schema (its month ledger)."""
    bars = _bars(start, end, freq).assign(symbol=symbol, timeframe=tf, source="massive", ingested_at=APR,
                                          complete=True)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(candles), bars.to_dict("records"))


def _months(store: CandleStore, tf: str) -> list[pd.Timestamp]:
    with store.engine.connect() as conn:
        return partitions.existing_months(conn, tf)


@pytest.fixture
def store(postgres_url):
    store = CandleStore(postgres_url)
    store.create_schema()
    yield store
    store.dispose()


def test_a_write_across_a_month_boundary_makes_both_months_and_the_next_and_reads_across(store):
    assert _months(store, "M1") == []
    start, end = FEB - pd.Timedelta(hours=1), FEB + pd.Timedelta(hours=1)
    _put(store, "EURUSD", "M1", start, end, "min")
    assert _months(store, "M1") == [JAN, FEB, MAR]  # March made ahead
    assert _months(store, "H1") == []  # another timeframe's months are its own
    got = store.read("EURUSD", "M1", start, end)
    assert got["ts"].tolist() == list(pd.date_range(start, end, freq="min", inclusive="left"))
    with store.engine.connect() as conn:  # the rows sit in their months' tables
        jan = conn.execute(sa.text(f"SELECT count(*) FROM {partitions.month_name('M1', JAN)}")).scalar_one()
        feb = conn.execute(sa.text(f"SELECT count(*) FROM {partitions.month_name('M1', FEB)}")).scalar_one()
    assert (jan, feb) == (60, 60)
    # writing the same window again needs no new table and replaces in place
    again = store.replace_window("EURUSD", "M1", start, end, _bars(start, end).assign(close=1.5))
    assert (again.rows_written, again.rows_deleted) == (120, 120)
    assert _months(store, "M1") == [JAN, FEB, MAR]


def test_retire_drops_whole_months_and_deletes_only_the_rest_below_the_cutoff(store):
    for symbol in ("EURUSD", "GBPUSD"):
        _put(store, symbol, "M1", JAN, MAR, "h")  # hourly stamps in the M1 series: small and exact to count
    _put(store, "EURUSD", "H1", JAN, MAR, "h")
    cutoff = FEB + pd.Timedelta(days=14)
    jan, before_cutoff = store.count("EURUSD", "M1", end=FEB), store.count("EURUSD", "M1", end=cutoff)

    removed = store.retire("M1", cutoff, ["EURUSD", "GBPUSD"], batch_size=50)

    assert removed == {"EURUSD": before_cutoff, "GBPUSD": before_cutoff}
    assert _months(store, "M1") == [FEB, MAR]  # January's table is gone, not emptied
    assert jan == 31 * 24 and store.count("EURUSD", "M1", end=cutoff) == 0
    assert store.read("GBPUSD", "M1")["ts"].iloc[0] == cutoff
    assert store.count("EURUSD", "H1") == 59 * 24 and _months(store, "H1")[0] == JAN  # other timeframes kept
    assert store.retire("M1", cutoff, ["EURUSD", "GBPUSD"]) == {}  # nothing left past the limit
    # a write into a retired month makes its table again
    _put(store, "EURUSD", "M1", JAN, JAN + pd.Timedelta(hours=2), "min")
    assert store.count("EURUSD", "M1", end=FEB) == 120


def test_writers_reaching_a_new_month_at_once_all_succeed(postgres_url, store):
    symbols = [f"SYM{i}" for i in range(6)]
    barrier, errors = threading.Barrier(len(symbols)), []

    def write(symbol: str) -> None:
        with CandleStore(postgres_url) as own:
            try:
                barrier.wait(timeout=30)
                _put(own, symbol, "M5", MAR - pd.Timedelta(hours=1), MAR + pd.Timedelta(hours=1), "5min")
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

    threads = [threading.Thread(target=write, args=(s,)) for s in symbols]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert _months(store, "M5") == [FEB, MAR, APR]
    assert {s: store.count(s, "M5") for s in symbols} == dict.fromkeys(symbols, 24)


def test_upgrade_from_0005_keeps_every_row_and_downgrade_gives_the_plain_table_back(postgres_url):
    store = CandleStore(postgres_url)
    with store.engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0005")
    for symbol in ("EURUSD", "XAUUSD"):
        _insert(store, symbol, "M1", JAN - pd.Timedelta(days=2), FEB + pd.Timedelta(days=3), "15min")
        _insert(store, symbol, "D1", JAN - pd.Timedelta(days=40), MAR, "D")
    _insert(store, "EURUSD", "D1_NY", JAN, FEB, "D")
    checksum, counts = store.checksum(), store.row_counts()
    with store.engine.connect() as conn:
        assert not partitions.is_partitioned(conn)

    store.create_schema()

    with store.engine.connect() as conn:
        assert partitions.is_partitioned(conn)
    assert store.checksum() == checksum and store.row_counts().equals(counts)
    december = pd.Timestamp("2025-12-01", tz="UTC")
    assert _months(store, "M1") == [december, JAN, FEB]
    assert _months(store, "D1")[0] == pd.Timestamp("2025-11-01", tz="UTC") and _months(store, "D1")[-1] == FEB
    _put(store, "EURUSD", "M1", FEB + pd.Timedelta(days=3), MAR + pd.Timedelta(days=1), "15min")  # into new months
    assert _months(store, "M1")[-2:] == [MAR, APR]
    checksum = store.checksum()

    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0005")
    with store.engine.connect() as conn:
        assert not partitions.is_partitioned(conn) and partitions.partition_names(conn) == set()
    assert store.checksum() == checksum
