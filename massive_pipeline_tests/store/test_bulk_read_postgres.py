"""The PostgreSQL bulk read (`store/bulk_read_postgres.py`) on a real server.

Its values are written into the SQL text so that ADBC can read through binary COPY, so these
tests hold it to what bound parameters would guarantee: symbol names built to break out of a
string literal read exactly their own bars whatever `standard_conforming_strings` says, the
statement really carries no parameters, timestamp bounds are exact to the microsecond (before
1970 too), NULL and NaN stay apart, and an instant pandas cannot hold is an error naming it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from massive_pipeline.reader import read_candles
from massive_pipeline.store import CandleStore, StoreError, bulk_read_postgres
from massive_pipeline.store.bar_query import BarQuery
from massive_pipeline.store.engine import parse_store_url
from massive_pipeline.testing.query_log import query_log
from massive_pipeline_tests.store.test_candle_store import make_bars

pytestmark = pytest.mark.postgres

T0 = pd.Timestamp("2024-03-04", tz="UTC")
MIN = pd.Timedelta(minutes=1)
# Each would widen the selection if it could end its string literal early.
HOSTILE = ["X'OR'1'='1", "B\\'--", "C\\", "D$$;--", "E''"]


def sql(url: str, statement: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def fetch(url: str, query: BarQuery) -> pa.Table:
    store_url = parse_store_url(url)
    return bulk_read_postgres.pool(store_url).run(lambda conn: bulk_read_postgres.fetch(conn, query))


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_symbols_made_to_break_a_literal_read_exactly_their_own_bars(postgres_url: str, conforming: str):
    name = postgres_url.rsplit("/", 1)[-1]
    sql(postgres_url, f'ALTER DATABASE "{name}" SET standard_conforming_strings = {conforming}')
    store = CandleStore(postgres_url)
    store.create_schema()
    symbols = ["EURUSD", *HOSTILE]
    for i, symbol in enumerate(symbols):
        bars = make_bars(T0, 5, seed=i).assign(close=float(i))
        store.write_window(symbol, "M1", T0, T0 + 5 * MIN, bars, source=f"src{i}")
    pool = bulk_read_postgres.pool(parse_store_url(postgres_url))
    with pool.session(lambda c: None) as conn, conn.cursor() as cur:  # the reads' connections run under it
        cur.execute("SELECT current_setting('standard_conforming_strings') AS s")
        assert cur.fetchall() == [(conforming,)]
    for i, symbol in enumerate(symbols):
        got = store.read(symbol, "M1")
        assert len(got) == 5 and set(got["close"]) == {float(i)} and set(got["source"]) == {f"src{i}"}
    every = read_candles(symbols, "M1", T0, T0 + 5 * MIN, url=postgres_url)
    assert every.groupby("symbol")["close"].first().to_dict() == {s: float(i) for i, s in enumerate(symbols)}
    store.dispose()


def test_the_read_is_one_statement_without_bound_parameters(postgres_url: str):
    """What lets the driver read through binary COPY: values written as literals, none bound."""
    store = CandleStore(postgres_url)
    store.create_schema()
    store.write_window("EURUSD", "M1", T0, T0 + 5 * MIN, make_bars(T0, 5))
    with query_log() as log:
        assert len(store.read("EURUSD", "M1", T0, T0 + 5 * MIN)) == 5
    (statement,) = log.candle_queries()
    assert "$1" not in statement and "%s" not in statement
    assert (
        "symbol IN ('EURUSD')" in statement and "ts >= '2024-03-04 00:00:00+00:00'::timestamptz" in statement
    )
    store.dispose()


def test_bounds_are_exact_to_the_microsecond_before_1970_too(postgres_url: str):
    store = CandleStore(postgres_url)
    store.create_schema()
    start = pd.Timestamp("1969-12-31 23:58", tz="UTC")
    store.write_window("EURUSD", "M1", start, start + 4 * MIN, make_bars(start, 4))
    got = store.read("EURUSD", "M1", start + MIN, start + 3 * MIN)
    assert list(got["ts"]) == [
        pd.Timestamp("1969-12-31 23:59", tz="UTC"),
        pd.Timestamp("1970-01-01", tz="UTC"),
    ]
    bar = pd.Timestamp("1970-01-01", tz="UTC")
    micro = pd.Timedelta(microseconds=1)
    assert list(store.read("EURUSD", "M1", after=bar - micro, limit=1)["ts"]) == [bar]
    assert list(store.read("EURUSD", "M1", after=bar, limit=1)["ts"]) == [bar + MIN]
    store.dispose()


def test_null_and_nan_stay_apart_in_arrow_and_are_both_missing_in_pandas(postgres_url: str):
    store = CandleStore(postgres_url)
    store.create_schema()
    store.write_window("EURUSD", "M1", T0, T0 + 3 * MIN, make_bars(T0, 3).assign(vwap=1.5, trades=7))
    sql(postgres_url, "UPDATE candles SET vwap = 'NaN'::float8 WHERE ts = '2024-03-04 00:01+00'")
    sql(postgres_url, "UPDATE candles SET vwap = NULL, trades = NULL WHERE ts = '2024-03-04 00:02+00'")
    table = fetch(postgres_url, BarQuery(("EURUSD",), "M1", columns=("vwap", "trades")))
    vwap = table.column("vwap").to_pylist()
    assert vwap[0] == 1.5 and np.isnan(vwap[1]) and vwap[2] is None
    assert table.column("trades").to_pylist() == [7, 7, None]
    frame = store.read("EURUSD", "M1")
    assert frame["vwap"].isna().tolist() == [False, True, True]
    assert frame["trades"].isna().tolist() == [False, False, True] and str(frame["trades"].dtype) == "Int64"
    store.dispose()


def test_an_instant_pandas_cannot_hold_is_one_error_naming_the_column(postgres_url: str):
    store = CandleStore(postgres_url)
    store.create_schema()
    store.write_window("EURUSD", "M1", T0, T0 + MIN, make_bars(T0, 1))
    sql(postgres_url, "UPDATE candles SET ingested_at = '2300-01-01+00'")
    with pytest.raises(StoreError, match="column 'ingested_at' holds timestamps outside 1677-2262") as err:
        store.read("EURUSD", "M1")
    assert "\n" not in str(err.value)
    store.dispose()
