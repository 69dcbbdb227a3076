"""`read_candles` and `iter_candles` against real stores, on SQLite and on PostgreSQL.

Each test writes bars through `CandleStore.write_window` (the pipeline's own write path) and
reads them back through the reader; the expected frames come from `CandleStore.read`, the
store's long-standing row-by-row read, so the fast paths are held to the same answer.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import massive_pipeline
from massive_pipeline.reader import MissingExtraError, NoSuchSeriesError, iter_candles, read_candles
from massive_pipeline.store import CandleStore, StoreError, StoreUnavailableError
from massive_pipeline.testing.query_log import query_log
from massive_pipeline_tests.store.test_candle_store import make_bars as store_bars

T0 = pd.Timestamp("2024-03-04 00:00", tz="UTC")  # a Monday
MIN = pd.Timedelta(minutes=1)
END = pd.Timestamp("2024-03-10", tz="UTC")


def make_bars(start: pd.Timestamp, n: int, *, freq: str = "1min", seed: int = 0) -> pd.DataFrame:
    """The store tests' bars (every 7th vwap, every 5th trades missing), every `freq` from `start`."""
    return store_bars(start, n, seed=seed).assign(ts=pd.date_range(start, periods=n, freq=freq, tz="UTC"))


def store_series(
    url: str, series: dict[str, int], *, timeframe: str = "M1", source: str = "massive"
) -> CandleStore:
    """Write `series` (symbol -> number of bars from T0) and return the store (schema created)."""
    store = CandleStore(url)
    store.create_schema()
    step = pd.Timedelta(timeframe.replace("M", "min").replace("H", "h")) if timeframe != "M1" else MIN
    for i, (symbol, n) in enumerate(series.items()):
        bars = make_bars(T0, n, freq=step, seed=i)
        store.write_window(symbol, timeframe, T0, T0 + step * n, bars, source=source, now=END)
    return store


def expected(
    store: CandleStore,
    symbols: list[str],
    timeframe: str = "M1",
    start=T0,
    end=END,
    include_forming: bool = False,
) -> pd.DataFrame:
    frames = [
        store.read(s, timeframe, start, end, include_forming=include_forming).assign(symbol=s)
        for s in sorted(symbols)
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["symbol", *[c for c in frame.columns if c != "symbol"]]]


def test_one_symbol_equals_candle_store_read(database_url: str):
    store = store_series(database_url, {"EURUSD": 500})
    got = read_candles("EURUSD", "M1", T0, END, url=database_url)
    assert list(got.columns) == [
        "symbol",
        *store.read("EURUSD", "M1").columns,
    ]  # the store's columns, symbol first
    assert (got["symbol"] == "EURUSD").all()
    pd.testing.assert_frame_equal(got.drop(columns="symbol"), store.read("EURUSD", "M1", T0, END))
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]" and str(got["trades"].dtype) == "Int64"


def test_several_symbols_are_one_frame_equal_to_the_concatenation_read_with_one_query(database_url: str):
    symbols = ["XAUUSD", "EURUSD", "BTCUSD"]
    store = store_series(database_url, {"XAUUSD": 120, "EURUSD": 300, "BTCUSD": 45})
    with query_log() as log:
        got = read_candles(symbols, "m1", "2024-03-04", "2024-03-10", url=database_url)
    pd.testing.assert_frame_equal(got, expected(store, symbols))
    assert list(got["symbol"].unique()) == ["BTCUSD", "EURUSD", "XAUUSD"]
    assert len(log.data_queries()) == 1, log.data_queries()
    assert len(log.candle_queries()) == 1, "every symbol had bars, so no existence probe was needed"


def test_ten_symbols_chunked_take_one_query_per_chunk_not_per_symbol(database_url: str):
    symbols = [f"SYM{i}" for i in range(10)]
    store_series(database_url, dict.fromkeys(symbols, 100))
    with query_log() as log:
        chunks = list(iter_candles(symbols, "M1", T0, END, url=database_url, chunk_rows=400))
    assert [len(c) for c in chunks] == [400, 400, 200]
    assert len(log.data_queries()) == len(chunks), log.data_queries()
    assert all(
        "symbol IN (" in q for q in log.data_queries()
    )  # every page asks for the symbols left, at once


def test_a_subset_of_columns_keeps_symbol_and_ts_first(database_url: str):
    store = store_series(database_url, {"EURUSD": 50})
    got = read_candles("EURUSD", "M1", T0, END, columns=["trades", "close", "ts", "close"], url=database_url)
    assert list(got.columns) == ["symbol", "ts", "trades", "close"]
    full = store.read("EURUSD", "M1")
    pd.testing.assert_frame_equal(got[["ts", "trades", "close"]], full[["ts", "trades", "close"]])
    only = read_candles("EURUSD", "M1", T0, END, columns=["source"], url=database_url)
    assert list(only.columns) == ["symbol", "ts", "source"] and set(only["source"]) == {"massive"}


def test_bars_still_forming_are_left_out_unless_asked(database_url: str):
    store = CandleStore(database_url)
    store.create_schema()
    bars = make_bars(T0, 6, freq="1h")
    # stored at 05:30: the 05:00 bar's hour had not ended
    store.write_window("EURUSD", "H1", T0, T0 + pd.Timedelta(hours=6), bars, now=T0 + pd.Timedelta(hours=5.5))
    done = read_candles("EURUSD", "H1", T0, END, url=database_url)
    assert len(done) == 5 and done["complete"].all()
    everything = read_candles("EURUSD", "H1", T0, END, include_forming=True, url=database_url)
    assert len(everything) == 6 and not everything["complete"].iloc[-1]
    pd.testing.assert_frame_equal(everything.drop(columns="symbol"), store.read("EURUSD", "H1", T0, END))


def test_dates_and_timestamps_bound_the_range_and_end_is_exclusive(database_url: str):
    store_series(database_url, {"EURUSD": 3 * 1440})  # three whole days of minutes
    day = read_candles("EURUSD", "M1", dt.date(2024, 3, 5), dt.date(2024, 3, 6), url=database_url)
    assert len(day) == 1440
    assert day["ts"].iloc[0] == pd.Timestamp("2024-03-05", tz="UTC")
    assert day["ts"].iloc[-1] == pd.Timestamp("2024-03-05 23:59", tz="UTC")
    same = read_candles(
        "EURUSD", "M1", "2024-03-05", pd.Timestamp("2024-03-06"), url=database_url
    )  # naive: UTC
    pd.testing.assert_frame_equal(same, day)
    edge = read_candles("EURUSD", "M1", T0 + 10 * MIN, T0 + 13 * MIN, url=database_url)
    assert list(edge["ts"]) == [T0 + 10 * MIN, T0 + 11 * MIN, T0 + 12 * MIN]
    in_new_york = pd.Timestamp("2024-03-04 19:10", tz="America/New_York")  # 2024-03-05 00:10 UTC
    late = read_candles("EURUSD", "M1", in_new_york, in_new_york + 2 * MIN, url=database_url)
    assert list(late["ts"]) == [
        pd.Timestamp("2024-03-05 00:10", tz="UTC"),
        pd.Timestamp("2024-03-05 00:11", tz="UTC"),
    ]


@pytest.mark.parametrize("chunk_rows", [1, 7, 250, 251, 1000])
def test_chunks_reassemble_to_the_whole_read(database_url: str, chunk_rows: int):
    symbols = ["EURUSD", "GBPUSD", "XAUUSD"]
    store_series(database_url, {"EURUSD": 100, "GBPUSD": 1, "XAUUSD": 150})  # 251 bars; one symbol of one bar
    whole = read_candles(symbols, "M1", T0, END, url=database_url)
    chunks = list(iter_candles(symbols, "M1", T0, END, url=database_url, chunk_rows=chunk_rows))
    assert all(0 < len(c) <= chunk_rows for c in chunks)
    again = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(again, whole)
    assert not again.duplicated(["symbol", "ts"]).any()


def test_a_read_after_an_abandoned_iteration_or_a_failed_read_sees_the_store_as_it_is_now(database_url: str):
    """Connections are kept from read to read: none may come back still inside an old snapshot."""
    store = store_series(database_url, {"EURUSD": 100})
    chunks = iter_candles("EURUSD", "M1", T0, END, url=database_url, chunk_rows=10)
    assert len(next(chunks)) == 10
    chunks.close()  # left halfway, inside its snapshot
    store.write_window("EURUSD", "M1", T0 + 100 * MIN, T0 + 120 * MIN, make_bars(T0 + 100 * MIN, 20), now=END)
    assert len(read_candles("EURUSD", "M1", T0, END, url=database_url)) == 120
    with pytest.raises(NoSuchSeriesError):
        read_candles(["EURUSD", "NOPE"], "M1", T0, END, url=database_url)
    store.write_window("EURUSD", "M1", T0 + 120 * MIN, T0 + 125 * MIN, make_bars(T0 + 120 * MIN, 5), now=END)
    assert len(read_candles("EURUSD", "M1", T0, END, url=database_url)) == 125


def test_time_span_chunks_hold_every_symbol_of_their_span(database_url: str):
    symbols = ["EURUSD", "XAUUSD"]
    store_series(database_url, {"EURUSD": 3 * 1440, "XAUUSD": 2 * 1440 + 30})
    whole = read_candles(symbols, "M1", T0, END, url=database_url)
    chunks = list(iter_candles(symbols, "M1", T0, END, url=database_url, chunk="1D", chunk_rows=1000))
    assert all(len(c) <= 1000 for c in chunks)
    days = [c["ts"].dt.floor("D").unique() for c in chunks]
    assert all(len(d) == 1 for d in days)  # no chunk crosses a span edge
    assert [d[0] for d in days] == sorted(d[0] for d in days)
    again = pd.concat(chunks).sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(again, whole)


def test_time_spans_finer_than_a_millisecond_still_tile_the_range(database_url: str):
    store_series(database_url, {"EURUSD": 10})
    whole = read_candles("EURUSD", "M1", T0, T0 + 10 * MIN, url=database_url)
    span = pd.Timedelta("90001500us")  # a minute and a half and 1.5 ms: edges between the milliseconds
    chunks = list(iter_candles("EURUSD", "M1", T0, T0 + 10 * MIN, url=database_url, chunk=span))
    assert len(chunks) > 5 and all(c["ts"].iloc[-1] - c["ts"].iloc[0] < span for c in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_null_vwap_and_trades_round_trip(database_url: str):
    store = store_series(database_url, {"EURUSD": 40})
    stored = store.read("EURUSD", "M1")
    got = read_candles("EURUSD", "M1", T0, END, url=database_url)
    assert got["vwap"].isna().sum() == stored["vwap"].isna().sum() == 6
    assert got["trades"].isna().sum() == stored["trades"].isna().sum() == 8
    assert got["vwap"].isna().tolist() == [i % 7 == 0 for i in range(40)]
    assert got["trades"].isna().tolist() == [i % 5 == 0 for i in range(40)]
    table = read_candles("EURUSD", "M1", T0, END, url=database_url, output="arrow")
    assert table.column("vwap").null_count == 6 and table.column("trades").null_count == 8


def test_an_empty_range_is_an_empty_frame_with_the_usual_dtypes(database_url: str):
    store_series(database_url, {"EURUSD": 10})
    full = read_candles("EURUSD", "M1", T0, END, url=database_url)
    for start, end in [(END, END + pd.Timedelta(days=1)), (T0, T0)]:
        empty = read_candles("EURUSD", "M1", start, end, url=database_url)
        assert len(empty) == 0
        pd.testing.assert_series_equal(empty.dtypes, full.dtypes)
    assert list(iter_candles("EURUSD", "M1", END, END + MIN, url=database_url)) == []
    table = read_candles("EURUSD", "M1", END, END + MIN, url=database_url, output="arrow")
    assert (
        table.num_rows == 0
        and table.schema == read_candles("EURUSD", "M1", T0, END, url=database_url, output="arrow").schema
    )


def test_arrow_and_polars_outputs_hold_the_same_bars(database_url: str):
    store_series(database_url, {"EURUSD": 30, "XAUUSD": 20})
    frame = read_candles(["EURUSD", "XAUUSD"], "M1", T0, END, url=database_url)
    table = read_candles(["EURUSD", "XAUUSD"], "M1", T0, END, url=database_url, output="arrow")
    assert isinstance(table, pa.Table)
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("symbol").type == pa.string()
    assert table.schema.field("trades").type == pa.int64()
    back = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    import polars as pl

    polars_frame = read_candles(["EURUSD", "XAUUSD"], "M1", T0, END, url=database_url, output="polars")
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame.columns == list(frame.columns)
    assert polars_frame.schema["ts"] == pl.Datetime("ns", "UTC") and polars_frame.schema["trades"] == pl.Int64
    assert polars_frame["symbol"].to_list() == frame["symbol"].tolist()
    assert polars_frame["ts"].dt.epoch("ns").to_list() == frame["ts"].astype("int64").tolist()
    np.testing.assert_array_equal(polars_frame["close"].to_numpy(), frame["close"].to_numpy())
    assert polars_frame["trades"].is_null().to_list() == frame["trades"].isna().tolist()


def test_polars_output_without_polars_names_the_extra(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'candles.sqlite'}"
    store_series(url, {"EURUSD": 5})
    monkeypatch.setitem(sys.modules, "polars", None)  # what an environment without polars gives `import`
    with pytest.raises(MissingExtraError, match=r"massive_pipeline\[polars\]"):
        read_candles("EURUSD", "M1", T0, END, url=url, output="polars")


def test_an_unknown_symbol_is_one_error_naming_it_and_what_is_stored(database_url: str):
    store_series(database_url, {"EURUSD": 5, "XAUUSD": 5})
    with pytest.raises(NoSuchSeriesError) as err:
        read_candles(["EURUSD", "EURUSX"], "M1", T0, END, url=database_url)
    text = str(err.value)
    assert (
        "\n" not in text and "'EURUSX'" in text and "did you mean EURUSD" in text and "EURUSD, XAUUSD" in text
    )
    with pytest.raises(NoSuchSeriesError, match="no H1 bars"):
        read_candles("EURUSD", "H1", T0, END, url=database_url)
    chunks = iter_candles(["EURUSD", "NOPE"], "M1", T0, END, url=database_url)
    with pytest.raises(NoSuchSeriesError, match="'NOPE'"):
        next(chunks)  # before any chunk of EURUSD


def test_a_missing_sqlite_store_is_one_error_and_is_not_created(tmp_path: Path):
    path = tmp_path / "nowhere" / "candles.sqlite"
    with pytest.raises(StoreUnavailableError, match="does not exist") as err:
        read_candles("EURUSD", "M1", T0, END, url=f"sqlite:///{path}")
    assert "\n" not in str(err.value)
    assert not path.parent.exists()


def test_a_store_without_the_candles_table_says_so(tmp_path: Path):
    path = tmp_path / "empty.sqlite"
    import sqlite3

    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match="has no candles table"):
        read_candles("EURUSD", "M1", T0, END, url=f"sqlite:///{path}")


def test_a_missing_postgres_database_is_unavailable_without_the_password(postgres_url: str):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(database="massive_no_such_db", password="s3cret-pw")
    with pytest.raises(StoreUnavailableError) as err:
        read_candles("EURUSD", "M1", T0, END, url=url.render_as_string(hide_password=False))
    text = str(err.value)
    assert "massive_no_such_db" in text and "s3cret-pw" not in text and "\n" not in text


def test_the_store_is_the_one_massive_database_url_names(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    store_series(url, {"EURUSD": 12})
    monkeypatch.setenv("MASSIVE_DATABASE_URL", url)
    assert len(massive_pipeline.read_candles("EURUSD", "M1", T0, END)) == 12


def test_sources_of_different_lengths_in_one_read(database_url: str):
    store = CandleStore(database_url)
    store.create_schema()
    first, second = make_bars(T0, 70), make_bars(T0 + 70 * MIN, 90, seed=3)
    store.write_window("EURUSD", "M1", T0, T0 + 70 * MIN, first, source="massive", now=END)
    store.write_window("EURUSD", "M1", T0 + 70 * MIN, T0 + 160 * MIN, second, source="binance-spot", now=END)
    store.write_window(
        "EURUSD", "M1", T0 + 100 * MIN, T0 + 101 * MIN, second.iloc[30:31], source="x", now=END
    )
    got = read_candles("EURUSD", "M1", T0, END, url=database_url)
    pd.testing.assert_frame_equal(got.drop(columns="symbol"), store.read("EURUSD", "M1"))
    assert got["source"].value_counts().to_dict() == {"binance-spot": 89, "massive": 70, "x": 1}


def test_importing_the_package_does_not_load_the_reader():
    code = (
        "import sys, massive_pipeline; print('massive_pipeline.reader' in sys.modules, 'pandas' in sys.modules); "
        "from massive_pipeline import reader; print(massive_pipeline.read_candles is reader.read_candles, "
        "massive_pipeline.iter_candles is reader.iter_candles)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False", "True", "True"]
