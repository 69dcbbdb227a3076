"""A stretch of unattended operation on an accelerated clock against the bundled server, through
the real run queue, with two history backfills running the whole time.

The shorter version of `benchmarks/bench_simulated_hour.py`: the code location's schedules and
queue sensor tick as the daemon would tick them; the runs they ask for are submitted to an
instance with `deploy/dagster.yaml`'s run queue and pools, dequeued by Dagster's run queue daemon
iteration and run by the run launcher in processes of a gRPC code server, while a two-year
backfill of EURUSD (critical) and one of GBPUSD (high) compete for the same run slots, pool slots
and API budget (5 requests per simulated minute on the limiter and on the server).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.testing.simulation import SimulationConfig, run_simulation
from massive_pipeline_tests.conftest import SMALL_CATALOG

# a cadence in real time at 4x: run alone, after the parallel phase (scripts/run-tests.sh). Not faster:
# a run's start (its process loading the code location, 4-10 s real on 2 cores) does not shrink with
# the clock, so at 6x it already costs one of the five simulated minutes the refresh has.
pytestmark = [pytest.mark.slow, pytest.mark.serial]


def test_critical_refresh_keeps_its_five_minute_cadence_through_the_run_queue_with_two_backfills(
    tmp_path: Path, monkeypatch,
):
    monkeypatch.delenv("MASSIVE_REDIS_URL", raising=False)
    # two years of history for the backfilled symbols (2024-10-14 .. 2026-10-13)
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(SMALL_CATALOG.replace("priority: critical, calendar: forex, start: 2025-06-01",
                                                  "priority: critical, calendar: forex, start: 2024-06-01")
                            .replace("priority: high, calendar: forex, start: 2025-06-01",
                                     "priority: high, calendar: forex, start: 2024-06-01"))
    catalog = load_catalog(catalog_path)
    config = SimulationConfig(start=pd.Timestamp("2026-10-14T14:00:00Z"), minutes=6, speedup=4.0,
                              backfills=(("EURUSD", 730), ("GBPUSD", 730)))
    started = time.monotonic()
    report = run_simulation(catalog, config)
    print(report.format())
    print(f"wall time {time.monotonic() - started:.0f} s")

    assert report.rejected_429 == 0
    assert report.max_in_window <= 5
    assert all(admitted <= 5 for _, admitted, _ in report.per_minute)
    # the 14:00 and 14:05 ticks each refreshed every critical symbol before the next tick
    assert [c.symbol for c in report.critical] == ["EURUSD", "XAUUSD", "BTCUSD"]
    for check in report.critical:
        assert check.ticks == 2 and check.on_time == 2, (check.symbol, check.problems, check.worst_lag)
    assert report.critical_worst_lag is not None and report.critical_worst_lag <= pd.Timedelta(minutes=5)
    # the backfills ran all along and got somewhere
    assert [b.symbol for b in report.backfills] == ["EURUSD", "GBPUSD"]
    for backfill in report.backfills:
        assert backfill.first_day == "2024-10-14" and backfill.last_day == "2026-10-13"
        assert backfill.progressed, backfill
    critical_runs = [r for r in report.runs if r.purpose == "priority_refresh"]
    assert critical_runs and all(r.success for r in critical_runs), [r for r in critical_runs if not r.success]
