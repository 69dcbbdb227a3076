"""How fast `massive_pipeline.read_candles` reads a large series, against every other way to read it.

    python benchmarks/bench_read.py [--rows 1000000] [--repeats 5] [--multi-rows 100000] [--sqlite-rows N]

In a fresh temporary PostgreSQL database (dropped afterwards) on the server named by
MASSIVE_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres), one
M1 series of `--rows` bars (5 % NULL vwap and trades) is bulk-loaded through the store's own
COPY writer, then read in one run, in rotating order within each repetition, by:

- reader:       `read_candles("EURUSD", "M1", …)` → pandas (the store's bulk read: ADBC into Arrow with
                the values inlined, then the `read` frame's dtypes; a connection opened per call);
- reader arrow: the same with `output="arrow"`;
- store.read:   `CandleStore.read`, the same bulk read on one of the store's kept connections;
- copy raw:     psycopg binary COPY of the same columns decoded by one unchecked `np.frombuffer` into
                numpy columns, no frame: the floor of a psycopg COPY path;
- adbc arrow:   ADBC (adbc-driver-postgresql) `cursor.fetch_arrow_table()` of a plain SELECT;
- adbc pandas:  that table `.to_pandas()` (trades as float64, microsecond timestamps: less than the reader does);
- adbc bound:   the plain SELECT with its values as bound parameters (`$1`, `$2`): why the store inlines
                them (the driver reads through COPY only without parameters);
- read_sql:     `pandas.read_sql` over SQLAlchemy.

Every method reads every column. The goal is reader ≥ 0.8 × the fastest of them (rows/s); the
script prints whether it holds and exits 1 when it is missed. Before timing, the reader's and
`CandleStore.read`'s frames are checked equal, value for value, to `pandas.read_sql`'s (an
independent path: SQLAlchemy over psycopg). Then, on the same server, 10 symbols × `--multi-rows` bars
are read with one `read_candles` and with `iter_candles` chunks, the queries each sends counted
at the driver (libpq trace): one per chunk, never one per symbol. Last, SQLite: the reader vs
`pandas.read_sql` vs ADBC SQLite (shown for reference; the reader does not use it, see below).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from bench_store_write import START, make_bars, temporary_database  # benchmarks/ is the script's folder
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from massive_pipeline import iter_candles, read_candles
from massive_pipeline.store import CandleStore
from massive_pipeline.store.bulk_postgres import PG_EPOCH_US
from massive_pipeline.testing.query_log import query_log

GOAL = 0.8
COLUMNS = "symbol, ts, open, high, low, close, volume, vwap, trades, source, ingested_at, complete"
SELECT = f"SELECT {COLUMNS} FROM candles WHERE symbol = 'EURUSD' AND timeframe = 'M1' ORDER BY symbol, timeframe, ts"
BOUND = f"SELECT {COLUMNS} FROM candles WHERE symbol = $1 AND timeframe = $2 ORDER BY symbol, timeframe, ts"
RAW_COPY = (
    "COPY (SELECT 0, ts, open, high, low, close, volume, coalesce(vwap, 0), vwap IS NULL, coalesce(trades, 0), "
    "trades IS NULL, ingested_at, complete, source FROM candles WHERE symbol = 'EURUSD' AND timeframe = 'M1' "
    "ORDER BY symbol, timeframe, ts) TO STDOUT (FORMAT BINARY)"
)


def load(url: str, series: dict[str, int]) -> pd.Timestamp:
    """Write each symbol's bars through the store's bulk writer; the end of the longest series."""
    with CandleStore(url) as store:
        store.create_schema()
        for symbol, n in series.items():
            bars = make_bars(n)
            store.write_window(symbol, "M1", START, START + pd.Timedelta(minutes=n), bars)
    return START + pd.Timedelta(minutes=max(series.values()))


def raw_copy_decode(conn) -> dict[str, np.ndarray]:
    """The COPY path with nothing around it: one fixed-layout frombuffer, no checks, no frame."""
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(RAW_COPY) as copy:
        for chunk in copy:
            buffer += chunk
    body = memoryview(buffer)[19:-2]
    fields = [("code", ">i4"), ("ts", ">i8")] + [
        (c, ">f8") for c in ("open", "high", "low", "close", "volume", "vwap")
    ]
    fields += [
        ("vwap_null", "?"),
        ("trades", ">i8"),
        ("trades_null", "?"),
        ("ingested_at", ">i8"),
        ("complete", "?"),
    ]
    layout = [("n", ">i2")]
    for name, wire in fields:
        layout += [(f"l_{name}", ">i4"), (name, wire)]
    fixed = np.dtype(layout).itemsize
    source_len = int.from_bytes(body[fixed : fixed + 4], "big") if len(body) else 1
    layout += [("l_source", ">i4"), ("source", f"S{source_len}")]
    records = np.frombuffer(body, dtype=np.dtype(layout))
    out = {name: records[name].astype(wire.replace(">", "=")) for name, wire in fields}
    out["ts"] = (out["ts"] + PG_EPOCH_US) * 1000
    out["source"] = records["source"]
    return out


def normalized(frame: pd.DataFrame, *, epoch_unit: str | None = None) -> pd.DataFrame:
    """A frame of bars in the reader's dtypes, whatever path read it (read_sql gives datetimes and floats;
    on SQLite, `epoch_unit="ms"`, the store's integer milliseconds)."""
    out = frame.copy()
    for column in ("ts", "ingested_at"):
        out[column] = pd.to_datetime(out[column], utc=True, unit=epoch_unit).dt.as_unit("ns")
    out["trades"] = out["trades"].astype("Int64")
    out["complete"] = out["complete"].astype(bool)
    out["source"] = out["source"].astype(object)
    return out.reset_index(drop=True)


def timed_runs(methods: dict[str, Callable[[], int]], repeats: int, expect: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in methods}
    names = list(methods)
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            t0 = time.perf_counter()
            rows = methods[name]()
            times[name].append(time.perf_counter() - t0)
            assert rows == expect, f"{name} read {rows} rows, expected {expect}"
        print(f"  rep {rep + 1}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in names), flush=True)
    return times


def report(times: dict[str, list[float]], rows: int, *, goal: bool = True) -> bool:
    """The table of medians, fastest first, and the reader's ratio to the fastest; whether the goal holds."""
    medians = {k: statistics.median(v) for k, v in times.items()}
    fastest = min(medians, key=medians.get)
    print(f"  {'method':<14}{'median s':>10}{'M rows/s':>10}{'vs fastest':>12}")
    for name, t in sorted(medians.items(), key=lambda kv: kv[1]):
        print(f"  {name:<14}{t:>10.3f}{rows / t / 1e6:>10.2f}{medians[fastest] / t:>11.2f}x")
    ratio = medians[fastest] / medians["reader"]
    print(
        f"  store.read = {medians[fastest] / medians['store.read']:.2f} x the fastest, "
        f"{medians['read_sql'] / medians['store.read']:.1f} x read_sql's speed"
    )
    if not goal:
        print(
            f"  reader = {ratio:.2f} x the fastest ({fastest}), {medians['read_sql'] / medians['reader']:.1f} x read_sql's speed"
        )
        return True
    ok = ratio >= GOAL
    print(f"  reader = {ratio:.2f} x the fastest ({fastest}); goal >= {GOAL}: {'PASS' if ok else 'FAIL'}")
    return ok


def postgres_single(url: str, rows: int, repeats: int) -> bool:
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    t0 = time.perf_counter()
    end = load(url, {"EURUSD": rows})
    print(f"PostgreSQL, one M1 series of {rows:,} bars (bulk-loaded in {time.perf_counter() - t0:.1f}s)")
    parsed = make_url(url)
    libpq_url = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    copy_conn = psycopg.connect(libpq_url, autocommit=True)
    copy_conn.execute("VACUUM ANALYZE candles")
    adbc_conn = adbc.connect(libpq_url)
    engine = create_engine(url)
    store = CandleStore(url)

    def adbc_table(bound: bool = False):
        with adbc_conn.cursor() as cur:
            if bound:
                cur.execute(BOUND, ["EURUSD", "M1"])
            else:
                cur.execute(SELECT)
            return cur.fetch_arrow_table()

    methods: dict[str, Callable[[], int]] = {
        "reader": lambda: len(read_candles("EURUSD", "M1", START, end, url=url)),
        "reader arrow": lambda: read_candles("EURUSD", "M1", START, end, url=url, output="arrow").num_rows,
        "store.read": lambda: len(store.read("EURUSD", "M1", START, end)),
        "copy raw": lambda: len(raw_copy_decode(copy_conn)["ts"]),
        "adbc arrow": lambda: adbc_table().num_rows,
        "adbc pandas": lambda: len(adbc_table().to_pandas()),
        "adbc bound": lambda: adbc_table(bound=True).num_rows,
        "read_sql": lambda: len(pd.read_sql(SELECT, engine)),
    }
    reference = normalized(pd.read_sql(SELECT, engine))
    pd.testing.assert_frame_equal(
        read_candles("EURUSD", "M1", START, end, url=url), reference, check_exact=True
    )
    pd.testing.assert_frame_equal(
        store.read("EURUSD", "M1", START, end), reference.drop(columns="symbol"), check_exact=True
    )
    print("  the reader's and CandleStore.read's frames equal pandas.read_sql's, value for value")
    try:
        ok = report(timed_runs(methods, repeats, rows), rows)
    finally:
        adbc_conn.close()
        copy_conn.close()
        engine.dispose()
        store.dispose()
    return ok


def postgres_multi(url: str, per_symbol: int) -> None:
    symbols = [f"SYM{i:02d}" for i in range(10)]
    end = load(url, dict.fromkeys(symbols, per_symbol))
    total = per_symbol * len(symbols)
    print(f"PostgreSQL, 10 symbols x {per_symbol:,} M1 bars in one read")
    with query_log() as log:
        t0 = time.perf_counter()
        frame = read_candles(symbols, "M1", START, end, url=url)
        took = time.perf_counter() - t0
    print(
        f"  read_candles: {len(frame):,} rows in {took:.2f}s ({total / took / 1e6:.2f} M rows/s), "
        f"{len(log.candle_queries())} query"
    )
    for chunk_rows in (250_000, 100_000):
        with query_log() as log:
            sizes = [len(c) for c in iter_candles(symbols, "M1", START, end, url=url, chunk_rows=chunk_rows)]
        print(
            f"  iter_candles(chunk_rows={chunk_rows:,}): {len(sizes)} chunks, {len(log.data_queries())} page "
            f"queries (+{len(log.candle_queries()) - len(log.data_queries())} existence probe), "
            f"{sum(sizes):,} rows, largest chunk {max(sizes):,}"
        )
        assert sum(sizes) == total and len(log.data_queries()) == len(sizes)


def sqlite_figures(rows: int, repeats: int) -> None:
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candles.sqlite"
        url = f"sqlite:///{path}"
        t0 = time.perf_counter()
        end = load(url, {"EURUSD": rows})
        print(f"SQLite, one M1 series of {rows:,} bars (loaded in {time.perf_counter() - t0:.1f}s)")
        conn = sqlite3.connect(path)
        adbc_conn = adbc_sqlite.connect(str(path))
        sql = SELECT

        def adbc_pandas() -> int:
            with adbc_conn.cursor() as cur:
                cur.execute(sql)
                return len(cur.fetch_arrow_table().to_pandas())

        store = CandleStore(url)
        reference = normalized(pd.read_sql(sql, conn), epoch_unit="ms")
        pd.testing.assert_frame_equal(
            read_candles("EURUSD", "M1", START, end, url=url), reference, check_exact=True
        )
        pd.testing.assert_frame_equal(
            store.read("EURUSD", "M1", START, end), reference.drop(columns="symbol"), check_exact=True
        )
        print("  the reader's and CandleStore.read's frames equal pandas.read_sql's, value for value")
        methods: dict[str, Callable[[], int]] = {
            "reader": lambda: len(read_candles("EURUSD", "M1", START, end, url=url)),
            "read_sql": lambda: len(pd.read_sql(sql, conn)),
            "adbc sqlite": adbc_pandas,
            "store.read": lambda: len(store.read("EURUSD", "M1", START, end)),
        }
        try:
            report(timed_runs(methods, repeats, rows), rows, goal=False)
        finally:
            conn.close()
            adbc_conn.close()
            store.dispose()
        print(
            "  (ADBC SQLite links its own copy of SQLite: in a process that also writes the file through "
            "Python's sqlite3, closing one copy's file drops the other's POSIX locks, which SQLite documents "
            "as a way to corrupt the database, so the reader stays on sqlite3)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the medians are compared")
    parser.add_argument(
        "--multi-rows", type=int, default=100_000, help="bars per symbol of the 10-symbol read"
    )
    parser.add_argument("--sqlite-rows", type=int, default=None, help="default: --rows")
    args = parser.parse_args()
    started = time.perf_counter()
    with temporary_database() as url:
        ok = postgres_single(url, args.rows, args.repeats)
    with temporary_database() as url:
        postgres_multi(url, args.multi_rows)
    sqlite_figures(args.sqlite_rows or args.rows, args.repeats)
    print(f"total {time.perf_counter() - started:.0f}s")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
