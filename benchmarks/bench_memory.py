"""Peak memory of a ranged backfill: 1 year against 5 years of EURUSD M1, side by side.

Each backfill runs in a subprocess of its own (so each peak is its own), through the path the CLI
and a single-run UI backfill use (`run_candle_backfill`: one ranged run of the candle job),
against the bundled server unthrottled, into a fresh SQLite store and Dagster instance. A run
streams its range slice by slice (`candles/slices.py`), so the peak resident set should not grow
with the range; the goal is a 5-year / 1-year ratio of at most 1.2. Prints each run's peak RSS,
rows stored, API requests and wall seconds, then the ratio.

    python benchmarks/bench_memory.py            # 1 and 5 years
    python benchmarks/bench_memory.py --years 1 2 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from massive_pipeline.testing.devserver import DevServer

END = dt.date(2026, 10, 31)
CATALOG = """\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2020-01-01}
"""
GOAL = 1.2


def child(years: int) -> None:
    """One backfill in this process; prints its figures as one JSON line."""
    from dagster import instance_for_test

    from massive_pipeline.cli.launch import run_candle_backfill
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.core.timeframes import Timeframe
    from massive_pipeline.definitions import build_definitions
    from massive_pipeline.store import CandleStore

    catalog = load_catalog()
    defs = build_definitions(catalog)
    start = END.replace(year=END.year - years) + dt.timedelta(days=1)
    began = time.perf_counter()
    with instance_for_test() as instance:
        (summary,) = run_candle_backfill(defs, instance, [catalog.get("EURUSD")], [Timeframe.M1], start, END)
    wall = time.perf_counter() - began
    store = CandleStore(os.environ["MASSIVE_DATABASE_URL"])
    rows = store.count("EURUSD", "M1")
    store.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"years": years, "peak_mb": peak_mb, "rows": rows, "requests": summary.api_requests,
                      "seconds": wall, "first": summary.first_partition, "last": summary.last_partition}))


def run(server: DevServer, years: int, workdir: Path) -> dict:
    """The figures of one backfill, run in a fresh subprocess with its own store and limiter."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-memory-{years}y-", dir=workdir))
    catalog = tmp / "catalog.yaml"
    catalog.write_text(CATALOG)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp),
        "MASSIVE_API_KEY": "bench-key",
        "MASSIVE_BASE_URL": server.url,
        "MASSIVE_RATE_LIMIT_PER_MINUTE": "1000000",
        "MASSIVE_RATE_LIMIT_URL": f"sqlite:///{tmp}/limiter.sqlite",
        "MASSIVE_DATABASE_URL": f"sqlite:///{tmp}/candles.sqlite",
        "MASSIVE_CATALOG": str(catalog),
    }
    done = subprocess.run([sys.executable, __file__, "--child", str(years)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir, DevServer(port=0) as server:
        for years in args.years:
            r = run(server, years, Path(workdir))
            results.append(r)
            print(f"{years} year(s) EURUSD M1 {r['first']}..{r['last']}: peak RSS {r['peak_mb']:.0f} MB, "
                  f"{r['rows']:,} rows, {r['requests']} API requests, {r['seconds']:.0f} s", flush=True)
    low, high = results[0], results[-1]
    ratio = high["peak_mb"] / low["peak_mb"]
    verdict = "ok" if ratio <= GOAL else "over the goal"
    print(f"peak RSS {high['years']} y / {low['years']} y: {ratio:.2f} (goal ≤ {GOAL}: {verdict}); "
          f"rows {high['rows'] / low['rows']:.2f} ×")


if __name__ == "__main__":
    main()
