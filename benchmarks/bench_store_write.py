"""How fast `CandleStore.write_window` writes a large window on PostgreSQL, against three baselines.

    python benchmarks/bench_store_write.py [--rows 1000000] [--repeats 3] [--upsert-rows 100000]

In a fresh temporary database (dropped afterwards) on the server named by
MASSIVE_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres), the same
M1 rows are written, in alternating order within each repetition, by:

(a) `store.write_window` into an empty `candles` table (validation, encoding, the merge with what is
    stored, and COPY all timed), and again into the full window right after (every bar compared);
(p) the previous write path, a blind replace (DELETE the window, COPY the bars: no comparison with
    what is stored, so it could lose bars a short answer lacks), on the same empty and full windows:
    the merge must cost at most 10 % more;
(b) a plain text-format COPY of rows serialized to a buffer before timing (only the COPY is timed)
    into an identical empty table: the floor for any bulk write;
(c) a row-by-row `executemany` upsert (`INSERT ... ON CONFLICT DO UPDATE`), the pattern the
    original notes used; parameters are prepared before timing, a slice is timed and scaled.

Each timed step ends with its commit, and a CHECKPOINT runs before each so one method does not pay
for another's dirty pages. Medians are compared with the goals write/COPY >= 0.5 (COPY time over
write time), write vs upsert >= 3x, and write vs the blind replace <= 1.10 (empty window).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from massive_pipeline.store import CandleStore, bulk_postgres, mask_url
from massive_pipeline.store.bars import prepare_bars

BASE_URL = os.environ.get("MASSIVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
START = pd.Timestamp("2020-01-01", tz="UTC")
COLUMNS = "symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, source, ingested_at"
UPSERT = (
    f"INSERT INTO candles_upsert ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, "
    "low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, "
    "trades = EXCLUDED.trades, source = EXCLUDED.source, ingested_at = EXCLUDED.ingested_at"
)


@contextmanager
def temporary_database() -> Iterator[str]:
    base = make_url(BASE_URL)
    name = f"massive_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as err:
        sys.exit(f"cannot create a benchmark database on {mask_url(base)}: {err}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_bars(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    close = 1.1 + np.cumsum(rng.normal(0, 1e-4, n))
    open_ = close + rng.normal(0, 5e-5, n)
    vwap = (open_ + close) / 2
    vwap[rng.random(n) < 0.05] = np.nan
    trades = pd.array(rng.integers(1, 900, n), dtype="Int64")
    trades[rng.random(n) < 0.05] = pd.NA
    return pd.DataFrame(
        {
            "ts": pd.date_range(START, periods=n, freq="1min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + 1e-4,
            "low": np.minimum(open_, close) - 1e-4,
            "close": close,
            "volume": rng.random(n) * 1e3,
            "vwap": vwap,
            "trades": trades,
        }
    )


def full_rows(bars: pd.DataFrame) -> pd.DataFrame:
    """The bars with every `candles` column, as the baselines insert them."""
    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame(
        {"symbol": "EURUSD", "timeframe": "M1", **{c: bars[c] for c in bars.columns}, "source": "massive",
         "ingested_at": now}
    )[[c.strip() for c in COLUMNS.split(",")]]


def copy_text(bars: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    full_rows(bars).to_csv(buffer, sep="\t", header=False, index=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S%z")
    return buffer.getvalue().encode()


def upsert_params(bars: pd.DataFrame) -> list[tuple[object, ...]]:
    frame = full_rows(bars).astype(object)
    frame = frame.where(frame.notna(), None)
    frame["ts"] = [t.to_pydatetime() for t in bars["ts"]]
    frame["ingested_at"] = [t.to_pydatetime() for t in frame["ingested_at"]]
    return list(frame.itertuples(index=False, name=None))


def timed(conn: psycopg.Connection, prepare: str, action: Callable[[], None]) -> float:
    with conn.cursor() as cur:
        cur.execute(prepare)
        cur.execute("CHECKPOINT")
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--upsert-rows", type=int, default=100_000, help="slice timed for (c), then scaled")
    args = parser.parse_args()
    n, upsert_n = args.rows, min(args.upsert_rows, args.rows)

    bars = make_bars(n)
    start, end = bars["ts"].iloc[0], bars["ts"].iloc[-1] + pd.Timedelta(minutes=1)
    text_buffer = copy_text(bars)
    params = upsert_params(bars.iloc[:upsert_n])
    print(f"{n:,} M1 rows; COPY text buffer {len(text_buffer) / 1e6:.0f} MB; upsert slice {upsert_n:,} rows")

    with temporary_database() as url:
        store = CandleStore(url)
        store.create_schema()
        raw_url = make_url(url)
        conn = psycopg.connect(
            host=raw_url.host, port=raw_url.port, user=raw_url.username, password=raw_url.password,
            dbname=raw_url.database, autocommit=True,
        )
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE candles_plain (LIKE candles INCLUDING ALL)")
            cur.execute("CREATE TABLE candles_upsert (LIKE candles INCLUDING ALL)")

        def replace() -> None:
            result = store.write_window("EURUSD", "M1", start, end, bars)
            assert result.rows_written == n

        def blind_replace() -> None:
            """The write path before merging: delete the window, COPY the bars, one transaction."""
            arrays = prepare_bars(bars, start, end, "bench")
            now = pd.Timestamp.now(tz="UTC").floor("ms")
            complete = np.ones(len(arrays), dtype=bool)
            with store.engine.begin() as sa_conn:
                bulk_postgres.lock_series(sa_conn, "EURUSD", "M1")
                sa_conn.exec_driver_sql(
                    "DELETE FROM candles WHERE symbol = 'EURUSD' AND timeframe = 'M1' AND ts >= %(lo)s AND ts < %(hi)s",
                    {"lo": start.to_pydatetime(), "hi": end.to_pydatetime()},
                )
                bulk_postgres.copy_bars(sa_conn, "EURUSD", "M1", arrays, "massive", now, complete)

        def plain_copy() -> None:
            with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY candles_plain ({COLUMNS}) FROM STDIN") as cp:
                cp.write(text_buffer)

        def upsert() -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(UPSERT, params)

        times: dict[str, list[float]] = {
            "replace": [], "overwrite": [], "blind": [], "blind_overwrite": [], "copy": [], "upsert": [],
        }
        # each (empty window, full window) pair runs back to back: the second finds the first's bars
        pairs = [
            [("replace", "TRUNCATE candles", replace), ("overwrite", "SELECT 1", replace)],
            [("blind", "TRUNCATE candles", blind_replace), ("blind_overwrite", "SELECT 1", blind_replace)],
            [("copy", "TRUNCATE candles_plain", plain_copy)],
            [("upsert", "TRUNCATE candles_upsert", upsert)],
        ]
        for rep in range(args.repeats):
            shift = rep % len(pairs)
            order = pairs[shift:] + pairs[:shift]
            if rep % 2:
                order = list(reversed(order))
            for name, prepare, action in (step for pair in order for step in pair):
                times[name].append(timed(conn, prepare, action))
            print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
        with conn.cursor() as cur:
            counts = [cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("candles", "candles_plain")]
        assert counts == [n, n], counts
        conn.close()
        store.dispose()

    med = {k: statistics.median(v) for k, v in times.items()}
    upsert_scaled = med["upsert"] * n / upsert_n
    ratio_copy = med["copy"] / med["replace"]
    ratio_upsert = upsert_scaled / med["replace"]
    ratio_blind = med["replace"] / med["blind"]
    print()
    print(f"median over {args.repeats} repetitions, {n:,} rows:")
    print(f"  (a) write_window, empty window     {med['replace']:8.2f} s")
    print(f"      write_window, full window      {med['overwrite']:8.2f} s  (compares and replaces {n:,} rows)")
    print(f"  (p) blind replace, empty window    {med['blind']:8.2f} s  (the previous write path)")
    print(f"      blind replace, full window     {med['blind_overwrite']:8.2f} s")
    print(f"  (b) plain COPY (text, pre-built)   {med['copy']:8.2f} s")
    scaled = f" (measured on {upsert_n:,} rows, scaled x{n / upsert_n:.1f})" if upsert_n < n else ""
    print(f"  (c) executemany upsert             {upsert_scaled:8.2f} s{scaled}")
    print(f"write_window vs plain COPY = {ratio_copy:.2f} (goal >= 0.5) {'OK' if ratio_copy >= 0.5 else 'MISSED'}")
    print(
        f"write_window vs executemany upsert = {ratio_upsert:.1f}x (goal >= 3) "
        f"{'OK' if ratio_upsert >= 3 else 'MISSED'}"
    )
    print(f"write_window / blind replace, empty window = {ratio_blind:.2f} (goal <= 1.10) "
          f"{'OK' if ratio_blind <= 1.10 else 'MISSED'}; full window = "
          f"{med['overwrite'] / med['blind_overwrite']:.2f} (not a goal: it compares every bar)")
    if ratio_copy < 0.5 or ratio_upsert < 3 or ratio_blind > 1.10:
        sys.exit(1)


if __name__ == "__main__":
    main()
