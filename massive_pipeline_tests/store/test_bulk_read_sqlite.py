"""The SQLite bulk read (`store/bulk_read_sqlite.py`) against plain sqlite3 reads of the same file.

The fast path packs NULLs and `complete` into flag bits and reads sources into one object field;
every combination of them must come back exactly as a row-by-row SELECT sees it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from massive_pipeline.store import CandleStore, StoreError, bulk_read_sqlite
from massive_pipeline.store.bar_query import VALUE_COLUMNS, BarQuery
from massive_pipeline.store.bar_table import to_frame
from massive_pipeline_tests.store.test_candle_store import make_bars

T0 = pd.Timestamp("2024-03-04", tz="UTC")
MIN = pd.Timedelta(minutes=1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "candles.sqlite"


def stored(path: Path, symbols: dict[str, int]) -> CandleStore:
    """Bars of each symbol from T0 (every 7th vwap, every 5th trades NULL), the last 3 of each still forming."""
    store = CandleStore(f"sqlite:///{path}")
    store.create_schema()
    for i, (symbol, n) in enumerate(symbols.items()):
        bars = make_bars(T0, n, seed=i)
        now = T0 + (n - 3) * MIN + pd.Timedelta(seconds=1)  # the last three bars' minutes had not ended
        store.write_window(symbol, "M1", T0, T0 + n * MIN, bars, source="massive" if i % 2 else "x", now=now)
    return store


def plain(path: Path, where: str = "") -> pd.DataFrame:
    """The rows as sqlite3 gives them one by one, in the store's read types: the independent answer."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT ts, {', '.join(VALUE_COLUMNS)} FROM candles {where} ORDER BY symbol, timeframe, ts"
        ).fetchall()
    frame = pd.DataFrame(rows, columns=["ts", *VALUE_COLUMNS])
    for column in ("ts", "ingested_at"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True).dt.as_unit("ns")
    frame["vwap"] = frame["vwap"].astype("float64")
    frame["trades"] = frame["trades"].astype("Int64")
    frame["complete"] = frame["complete"].astype(bool)
    return frame


def run(path: Path, query: BarQuery):
    with sqlite3.connect(path) as conn:
        return bulk_read_sqlite.fetch(conn, query)


def test_flags_and_sources_come_back_exactly_as_a_plain_select_sees_them(path: Path):
    store = stored(path, {"AAA": 40, "BBB": 35})
    with sqlite3.connect(path) as conn:  # a third source, in the middle of one series
        conn.execute("UPDATE candles SET source = 'binance-spot' WHERE symbol = 'AAA' AND ts % 180000 = 0")
    table = run(path, BarQuery(("AAA", "BBB"), "M1"))
    got = to_frame(table)
    pd.testing.assert_frame_equal(got, plain(path), check_exact=True)
    assert table.column("code").to_pylist() == [0] * 40 + [1] * 35
    assert got["vwap"].isna().sum() == 6 + 5 and got["trades"].isna().sum() == 8 + 7
    assert (~got["complete"]).sum() == 6 and set(got["source"]) == {"x", "massive", "binance-spot"}
    store.dispose()


def test_a_subset_of_columns_and_forming_bars_left_out(path: Path):
    store = stored(path, {"AAA": 20})
    table = run(path, BarQuery(("AAA",), "M1", columns=("trades", "complete"), include_forming=False))
    assert table.column_names == ["ts", "trades", "complete"]
    expected = plain(path, "WHERE complete = 1")[["ts", "trades", "complete"]]
    pd.testing.assert_frame_equal(to_frame(table), expected)
    store.dispose()


def test_newest_first_gives_the_last_bars_before_the_end_oldest_first(path: Path):
    store = stored(path, {"AAA": 20})
    table = run(path, BarQuery(("AAA",), "M1", end=T0 + 10 * MIN, newest_first=True, limit=3))
    assert to_frame(table)["ts"].tolist() == [T0 + 7 * MIN, T0 + 8 * MIN, T0 + 9 * MIN]
    store.dispose()


def test_an_instant_pandas_cannot_hold_is_one_error_naming_the_column(path: Path):
    store = stored(path, {"AAA": 3})
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE candles SET ts = ts + 10000000000000000 WHERE ts = (SELECT max(ts) FROM candles)"
        )
    with pytest.raises(StoreError, match="column 'ts' holds timestamps outside 1677-2262") as err:
        store.read("AAA", "M1")
    assert "\n" not in str(err.value)
    store.dispose()
