"""CPU a CLI backfill spends on Dagster bookkeeping, against the API time the same history needs.

    python benchmarks/bench_bookkeeping.py [--symbol EURUSD] [--start 2024-01-01] [--end 2025-12-31]
                                           [--instances sqlite,postgres]

Backfills one symbol in all eight timeframes with `massive-pipeline backfill` (the CLI's in-process
runs, as a user would) against the bundled server (unthrottled, its clock stopped after the range),
once per Dagster instance, each in a fresh `DAGSTER_HOME`:

- `sqlite`: the default instance (the repository's dagster.yaml: SQLite files under DAGSTER_HOME);
- `postgres`: deploy/dagster.yaml (dagster-postgres) on a fresh database of the server named by
  MASSIVE_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres),
  dropped afterwards.

The candle store is a SQLite file of its own in both, so only the instance differs. For each it
prints the events the run(s) wrote (counted in the instance's event log), the CPU seconds of the
backfill process and its children (user + sys, from the kernel's accounting of the waited-for
child), the wall seconds, the API time the same history needs on the free plan (the bundled
server's logged requests ÷ 5 per minute), and the ratio CPU / API time (goal ≤ 0.5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from massive_pipeline.testing.devserver import DevServer

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("MASSIVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FREE_PLAN_PER_MINUTE = 5
GOAL = 0.5


@dataclass(frozen=True)
class Figures:
    instance: str
    events: int
    runs: int
    cpu_seconds: float
    wall_seconds: float
    requests: int
    instance_bytes: int

    @property
    def api_seconds(self) -> float:
        return self.requests / FREE_PLAN_PER_MINUTE * 60

    @property
    def ratio(self) -> float:
        return self.cpu_seconds / self.api_seconds if self.api_seconds else float("inf")


@contextmanager
def postgres_database() -> Iterator[URL]:
    """A fresh, empty database for the instance, dropped afterwards."""
    base = make_url(PG_URL)
    name = f"massive_bench_dagster_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _instance_env(kind: str, home: Path, pg: URL | None) -> dict[str, str]:
    """The instance's dagster.yaml in `home`, and the variables deploy/dagster.yaml reads."""
    if kind == "sqlite":
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        return {}
    assert pg is not None
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return {
        "DAGSTER_POSTGRES_HOST": pg.host or "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(pg.port or 5432),
        "DAGSTER_POSTGRES_USER": pg.username or "postgres", "DAGSTER_POSTGRES_PASSWORD": pg.password or "",
        "DAGSTER_POSTGRES_DB": pg.database or "",
    }


def _child_cpu(pid: int) -> tuple[int, float]:
    """Wait for `pid`; its exit status and user+sys seconds (its waited-for children included)."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def _count_events(home: Path, env: dict[str, str]) -> tuple[int, int]:
    """Events in the instance's event log over all its runs, read through Dagster's own API (in a
    child process, so this process never loads the instance's environment)."""
    code = (
        "from dagster import DagsterInstance\n"
        "with DagsterInstance.get() as i:\n"
        "    runs = i.get_runs()\n"
        "    print(len(runs), sum(len(i.all_logs(r.run_id)) for r in runs))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    runs, events = out.stdout.split()
    return int(events), int(runs)


def _instance_bytes(kind: str, home: Path, pg: URL | None) -> int:
    if kind == "sqlite":
        return sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and "candles" not in p.name
                   and "ratelimit" not in p.name)
    assert pg is not None
    engine = create_engine(pg)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def backfill(kind: str, server: DevServer, args: argparse.Namespace, pg: URL | None) -> Figures:
    work = Path(tempfile.mkdtemp(prefix=f"massive-bench-bookkeeping-{kind}-"))
    home = work / "dagster_home"
    home.mkdir()
    env = {
        **os.environ, **_instance_env(kind, home, pg),
        "DAGSTER_HOME": str(home), "MASSIVE_BASE_URL": server.url, "MASSIVE_API_KEY": "bench-key",
        "MASSIVE_RATE_LIMIT_PER_MINUTE": "100000", "MASSIVE_AUTOMATION": "stopped",
        "MASSIVE_DATABASE_URL": f"sqlite:///{work}/candles.sqlite",
        "MASSIVE_RATE_LIMIT_URL": f"sqlite:///{work}/ratelimit.sqlite",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("MASSIVE_CATALOG", None)
    command = [sys.executable, "-m", "massive_pipeline.cli", "backfill", "--symbols", args.symbol,
               "--start", args.start, "--end", args.end]
    server.clear_requests()
    began = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read() if child.stdout else ""
    code, cpu = _child_cpu(child.pid)
    child.returncode = code
    wall = time.perf_counter() - began
    if code != 0:
        sys.exit(f"the {kind} backfill failed (exit {code}):\n{output}")
    requests = server.request_count(kind=None)
    events, runs = _count_events(home, env)
    figures = Figures(kind, events, runs, cpu, wall, requests, _instance_bytes(kind, home, pg))
    shutil.rmtree(work, ignore_errors=True)
    return figures


def report(f: Figures) -> str:
    verdict = "ok" if f.ratio <= GOAL else "ABOVE GOAL"
    return (
        f"{f.instance:<8} {f.runs} run(s), {f.events:>6} events, instance {f.instance_bytes / 1e6:7.1f} MB, "
        f"CPU {f.cpu_seconds:7.1f} s, wall {f.wall_seconds:7.1f} s, {f.requests} requests = "
        f"{f.api_seconds:6.1f} s API time at {FREE_PLAN_PER_MINUTE}/min, CPU/API {f.ratio:.3f} "
        f"(goal ≤ {GOAL}: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="EURUSD")
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--instances", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.instances.split(",") if k.strip()]
    unknown = sorted(set(kinds) - {"sqlite", "postgres"})
    if unknown:
        parser.error(f"unknown instance kind(s): {', '.join(unknown)} (choose sqlite, postgres)")
    clock = pd.Timestamp(dt.date.fromisoformat(args.end), tz="UTC") + pd.Timedelta(days=2)
    print(f"{args.symbol}, all eight timeframes, {args.start}..{args.end}; bundled server unthrottled", flush=True)
    with DevServer(port=0, now=clock) as server:
        for kind in kinds:
            if kind == "postgres":
                with postgres_database() as pg:
                    figures = backfill(kind, server, args, pg)
            else:
                figures = backfill(kind, server, args, None)
            print(report(figures), flush=True)


if __name__ == "__main__":
    main()
