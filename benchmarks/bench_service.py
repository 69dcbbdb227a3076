"""The data service's `GET /candles` on a live `massive-pipeline serve`: time per page and rows/s.

Seeds one EURUSD M1 series of `--rows` bars (default 200,000) on SQLite, or on a fresh database
of the PostgreSQL server in MASSIVE_TEST_POSTGRES_URL with `--backend postgres`, starts the
service on a free port, then pages through the whole series with `limit=50000` in each format
(json, csv, parquet, arrow), best of `--repeat` passes, and prints per format the median page
time and the rows per second of the whole pass. Read through `CandleStore.read` (service/candles.py)
until the fast reader lands.

    python benchmarks/bench_service.py [--rows 200000] [--backend sqlite|postgres] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa

from massive_pipeline.store import CandleStore

PG_ADMIN_URL = os.environ.get(
    "MASSIVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
FORMATS = ("json", "csv", "parquet", "arrow")


def seed(url: str, rows: int) -> None:
    store = CandleStore(url)
    store.create_schema()
    ts = pd.date_range("2024-01-01", periods=rows, freq="1min", tz="UTC")
    close = 1.1 + np.cumsum(np.random.default_rng(0).normal(0, 1e-4, rows))
    bars = pd.DataFrame(
        {
            "ts": ts,
            "open": close,
            "high": close + 1e-4,
            "low": close - 1e-4,
            "close": close,
            "volume": np.ones(rows),
        }
    )
    store.write_window("EURUSD", "M1", ts[0], ts[-1] + pd.Timedelta(minutes=1), bars)
    store.dispose()


def one_pass(client: httpx.Client, fmt: str) -> tuple[float, list[float], int]:
    url: str | None = f"/candles?symbol=EURUSD&timeframe=M1&limit=50000&format={fmt}"
    pages, total, started = [], 0, time.perf_counter()
    while url is not None:
        t0 = time.perf_counter()
        answer = client.get(url)
        answer.raise_for_status()
        pages.append(time.perf_counter() - t0)
        total += int(answer.headers["X-Bar-Count"])
        link = answer.headers.get("Link")
        url = None if link is None else link.split(">")[0].lstrip("<")
    return time.perf_counter() - started, pages, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from massive_pipeline_tests.processes import cli, free_port, http_ok, pipeline_env, start, wait_until

    with tempfile.TemporaryDirectory() as tmp:
        admin, name = None, f"massive_bench_{uuid.uuid4().hex[:8]}"
        if args.backend == "postgres":
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{tmp}/candles.sqlite"
        try:
            seed(url, args.rows)
            port = free_port()
            proc = start(
                cli("serve", "--port", str(port)),
                env=pipeline_env(
                    DAGSTER_HOME=tmp,
                    MASSIVE_DATABASE_URL=url,
                    MASSIVE_RATE_LIMIT_URL=f"sqlite:///{tmp}/limiter.sqlite",
                ),
                log=Path(tmp) / "serve.log",
                name="serve",
            )
            try:
                wait_until(
                    lambda: http_ok(f"http://127.0.0.1:{port}/openapi.json"),
                    timeout=120,
                    what="service up",
                    on_timeout=proc.output,
                )
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                    print(f"{args.rows:,} M1 rows on {args.backend}, pages of 50,000, best of {args.repeat}")
                    for fmt in FORMATS:
                        best = min((one_pass(client, fmt) for _ in range(args.repeat)), key=lambda r: r[0])
                        elapsed, pages, total = best
                        assert total == args.rows, (fmt, total)
                        print(
                            f"  {fmt:<8} {elapsed:6.2f} s for {len(pages)} pages: {total / elapsed:>9,.0f} rows/s, "
                            f"median page {statistics.median(pages):.2f} s"
                        )
            finally:
                proc.stop()
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
