"""API requests a backfill spends, against the fewest the 50,000-bar limit allows, and load time.

Backfills 30 days and 1 year of EURUSD M1 through the same Dagster path the CLI and a single-run
UI backfill use, against the bundled server, and prints requests used vs the minimum
(ceil(bars / 50,000)) and the wall time; then the time to load the full packaged catalog's
definitions (46 symbols × 8 timeframes).

    python benchmarks/bench_requests.py
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import tempfile
import time

from dagster import instance_for_test

from massive_pipeline.testing.devserver import DevServer

PAGE = 50_000


def backfill(server: DevServer, days: int) -> None:
    from massive_pipeline.cli.launch import run_candle_backfill
    from massive_pipeline.core.catalog import load_catalog
    from massive_pipeline.core.timeframes import Timeframe
    from massive_pipeline.definitions import build_definitions
    from massive_pipeline.store import CandleStore

    tmp = tempfile.mkdtemp(prefix="massive-bench-")
    os.environ["MASSIVE_DATABASE_URL"] = f"sqlite:///{tmp}/candles.sqlite"
    os.environ["MASSIVE_RATE_LIMIT_URL"] = f"sqlite:///{tmp}/limiter.sqlite"
    catalog = load_catalog()
    defs = build_definitions(catalog)
    end = dt.date(2026, 10, 31)
    start = end - dt.timedelta(days=days - 1)
    server.clear_requests()
    began = time.perf_counter()
    with instance_for_test() as instance:
        run_candle_backfill(defs, instance, [catalog.get("EURUSD")], [Timeframe.M1], start, end)
    wall = time.perf_counter() - began
    used = server.request_count(kind="aggs")
    store = CandleStore(os.environ["MASSIVE_DATABASE_URL"])
    bars = store.count("EURUSD", "M1")
    store.dispose()
    # the API's limit counts base bars scanned, so the minimum is set by the bars in the range
    minimum = max(1, math.ceil(bars / PAGE))
    print(f"{days:>4} days EURUSD M1: {bars:>7} bars, {used} requests (minimum {minimum}, "
          f"ratio {used / minimum:.2f}), wall {wall:.1f} s")


def main() -> None:
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="massive-bench-home-"))
    os.environ["MASSIVE_API_KEY"] = "bench-key"
    os.environ["MASSIVE_RATE_LIMIT_PER_MINUTE"] = "100000"
    os.environ.pop("MASSIVE_CATALOG", None)
    with DevServer(port=0) as server:
        os.environ["MASSIVE_BASE_URL"] = server.url
        for days in (30, 365):
            backfill(server, days)
    code = (
        "import time; t=time.perf_counter(); from massive_pipeline.definitions import defs; "
        "n=len(list(defs.resolve_asset_graph().get_all_asset_keys())); "
        "print(f'definitions: {n} assets loaded in {time.perf_counter()-t:.2f} s')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
