"""Does the PostgreSQL store stay as fast at 50 million bars as at 1 million? Old plain table vs partitioned.

    python benchmarks/bench_store_scale.py [--symbols 50] [--repeats 5] [--retention-repeats 3]

Two temporary databases on the server named by MASSIVE_TEST_POSTGRES_URL (dropped at the end):
a small store of one symbol and a large one of `--symbols` symbols, each symbol two years
(2024-2025, weekdays) of M1 with its M5 .. W1 (993,000 bars a symbol: 1 million and 50 million
bars), generated server-side by INSERT ... SELECT generate_series. Both are first built as the
OLD design (revision 0005: one plain table) with the month ledger of revision 0007 added and
filled as its upgrade fills it (this code's write and retention paths keep it on any layout),
measured, then upgraded by revision 0006 (the upgrade of the large one is timed: what converting
an existing store costs) and 0007 (the ledger's fill, timed on its own) and measured again.

Measured on each store, `--repeats` times (medians):
- replace: `write_window` of one day of one M1 series (1,440 bars read back and written again,
  the 5-minute refresh's shape), a different day each repetition;
- read:    `CandleStore.read` of one month of one M1 series (about 31,000 bars);
- retention: `CandleStore.retire` of M1's oldest month (what `retention_job` runs per timeframe),
  `--retention-repeats` times, each retiring the next month; on the partitioned store the
  per-symbol COUNT of the month that `retire` ran before each DROP until the ledger took its
  place ("retention count": the cost the ledger removes, not part of `retire` any more) is timed
  on its own, just before.

Prints each median and the ratio large/small, goal <= 2, for both designs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pandas as pd
from bench_store_write import temporary_database  # benchmarks/ is the script's folder
from sqlalchemy import text

from massive_pipeline.store import CandleStore, migrate, month_rows, partitions
from massive_pipeline.store.schema import candle_month_rows

GOAL = 2.0
START, END = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")
TIMEFRAMES = {"M1": "1 minute", "M5": "5 minutes", "M15": "15 minutes", "M30": "30 minutes", "H1": "1 hour",
              "H4": "4 hours", "D1": "1 day", "W1": "7 days"}
SERIES = "S000"  # the measured series, present in both stores
_INSERT = """
INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, source, ingested_at, complete)
SELECT :symbol, :tf, t, p, p + 0.0004, p - 0.0004, p + 0.0001, 10 + (x % 97), p, 5 + (x % 89), 'massive', now(), true
FROM (SELECT t, 1.1 + 0.01 * sin(extract(epoch FROM t) / 3600.0 + :phase) AS p, extract(epoch FROM t)::bigint / 60 AS x
      FROM generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) - CAST(:step AS interval),
                           CAST(:step AS interval)) AS t
      WHERE :tf = 'W1' OR extract(isodow FROM t) < 6) AS g
"""


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def _load(url: str, names: list[str], offset: int) -> None:
    store = CandleStore(url)
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for i, sym in enumerate(names):
            for tf, step in TIMEFRAMES.items():  # 2024-01-01 is a Monday, so the week bars start there too
                conn.execute(text(_INSERT), {"symbol": sym, "tf": tf, "start": START, "end": END, "step": step,
                                             "phase": float(offset + i)})
    store.dispose()


def build_plain(url: str, count: int) -> float:
    """The store at revision 0005 (the old plain table) holding `count` symbols; seconds taken.

    Loaded without its primary key by two connections, the key built afterwards (a sorted build:
    far faster than maintaining it row by row, and the same index in the end)."""
    started = time.perf_counter()
    store = CandleStore(url)
    with store.engine.begin() as conn:
        from alembic import command

        command.upgrade(migrate.alembic_config(conn), "0005")
        conn.execute(text("ALTER TABLE candles DROP CONSTRAINT candles_pkey"))
    names = symbols(count)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_load, [url, url], [names[0::2], names[1::2]], [0, 1]))
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        conn.execute(text("ALTER TABLE candles ADD CONSTRAINT candles_pkey PRIMARY KEY (symbol, timeframe, ts)"))
        conn.execute(text("VACUUM ANALYZE candles"))
    store.dispose()
    return time.perf_counter() - started


def add_ledger(url: str) -> float:
    """The month ledger on the plain store, made and filled as revision 0007 does; seconds taken.

    The store is built by raw SQL, which keeps no ledger, and this code's write path needs one."""
    started = time.perf_counter()
    with CandleStore(url) as store, store.engine.begin() as conn:
        candle_month_rows.create(conn)
        month_rows.fill(conn)
    return time.perf_counter() - started


def upgrade(url: str) -> tuple[float, float]:
    """Revisions 0006 and then 0007 on the store (what `create_schema` does to an existing one);
    seconds each. The plain store's own ledger goes first: 0007 makes it again from the rows."""
    store = CandleStore(url)
    with store.engine.begin() as conn:
        candle_month_rows.drop(conn)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        from alembic import command

        command.upgrade(migrate.alembic_config(conn), "0006")
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM ANALYZE candles"))
    partitioned = time.perf_counter() - started
    started = time.perf_counter()
    store.create_schema()
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM ANALYZE candle_month_rows"))
    store.dispose()
    return partitioned, time.perf_counter() - started


def rows(url: str) -> int:
    with CandleStore(url) as store, store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM candles")).scalar_one())


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(url: str, repeats: int, retention_repeats: int, first_month: int) -> dict[str, float]:
    """Median seconds of replace, read and retention on one store (retention from `first_month` on)."""
    out: dict[str, list[float]] = {"replace": [], "read": [], "retention": [], "retention count": []}
    with CandleStore(url) as store:
        everyone = sorted(set(store.rows_by_month().query("timeframe == 'M1'")["symbol"]))
        store.read(SERIES, "M1", START, START + pd.Timedelta(days=1))  # warm the kept connection
        for rep in range(repeats):
            day = pd.Timestamp("2025-03-03", tz="UTC") + pd.Timedelta(days=rep)
            bars = store.read(SERIES, "M1", day, day + pd.Timedelta(days=1))
            bars = bars[["ts", "open", "high", "low", "close", "volume", "vwap", "trades"]]
            out["replace"].append(timed(partial(
                store.write_window, SERIES, "M1", day, day + pd.Timedelta(days=1), bars, now=END)))
            month = pd.Timestamp("2025-06-01", tz="UTC") + pd.offsets.MonthBegin(rep)
            started = time.perf_counter()
            got = store.read(SERIES, "M1", month, month + pd.offsets.MonthBegin(1))
            out["read"].append(time.perf_counter() - started)
            assert len(got) > 20_000, len(got)
        for rep in range(retention_repeats):
            month = START + pd.offsets.MonthBegin(first_month + rep)
            cutoff = month + pd.offsets.MonthBegin(1)
            name = partitions.month_name("M1", month)
            with store.engine.connect() as conn:  # the count `retire` does before the DROP, timed on its own
                if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar_one() is not None:
                    count = text(f"SELECT symbol, count(*) FROM {name} GROUP BY symbol")
                    out["retention count"].append(timed(partial(conn.execute, count)))
            out["retention"].append(timed(partial(store.retire, "M1", cutoff, everyone)))
            assert store.count(SERIES, "M1", end=cutoff) == 0
    return {k: statistics.median(v) for k, v in out.items() if v}


def report(design: str, small: dict[str, float], large: dict[str, float], sizes: tuple[int, int]) -> bool:
    print(f"\n{design}: {sizes[0]:,} vs {sizes[1]:,} bars")
    print(f"  {'operation':<18}{'small s':>10}{'large s':>10}{'ratio':>8}  goal <= {GOAL:g}")
    ok = True
    for name in ("replace", "read", "retention", "retention count"):
        if name not in small:
            continue
        ratio = large[name] / small[name] if small[name] else float("nan")
        verdict = "" if name == "retention count" else ("PASS" if ratio <= GOAL else "FAIL")
        ok &= name == "retention count" or ratio <= GOAL
        print(f"  {name:<18}{small[name]:>10.4f}{large[name]:>10.4f}{ratio:>8.2f}  {verdict}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--retention-repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    with temporary_database() as small_url, temporary_database() as large_url:
        print(f"building the old plain-table stores (1 and {args.symbols} symbols, revision 0005)", flush=True)
        t_small = build_plain(small_url, 1)
        t_large = build_plain(large_url, args.symbols)
        sizes = (rows(small_url), rows(large_url))
        print(f"  built {sizes[0]:,} bars in {t_small:.0f}s and {sizes[1]:,} in {t_large:.0f}s", flush=True)
        t_ledger_small, t_ledger_large = add_ledger(small_url), add_ledger(large_url)
        print(f"  month ledger filled in {t_ledger_small:.1f}s and {t_ledger_large:.1f}s", flush=True)
        old = (measure(small_url, args.repeats, args.retention_repeats, 0),
               measure(large_url, args.repeats, args.retention_repeats, 0))
        report("old plain table (revision 0005)", *old, sizes)
        print("\nupgrading both by revisions 0006 and 0007 (create_schema)", flush=True)
        (t_up_small, t_fill_small), (t_up_large, t_fill_large) = upgrade(small_url), upgrade(large_url)
        sizes = (rows(small_url), rows(large_url))
        print(f"  upgrade of {sizes[0]:,} bars: {t_up_small:.1f}s; of {sizes[1]:,} bars: {t_up_large:.0f}s")
        print(f"  then 0007 (month ledger): {t_fill_small:.1f}s; {t_fill_large:.1f}s")
        new = (measure(small_url, args.repeats, args.retention_repeats, args.retention_repeats),
               measure(large_url, args.repeats, args.retention_repeats, args.retention_repeats))
        ok = report("partitioned (revision 0006)", *new, sizes)
    print(f"\ntotal {time.perf_counter() - started:.0f}s; partitioned store meets the goal: {'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
