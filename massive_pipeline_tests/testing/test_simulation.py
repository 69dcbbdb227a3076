"""A stretch of unattended operation on an accelerated clock against the bundled server.

The shorter version of `benchmarks/bench_simulated_hour.py`: the code location's schedules and
queue sensor tick as the daemon would tick them, the runs they ask for execute concurrently, and
the limiter and the server both allow the free plan's 5 requests per (simulated) minute.
"""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.testing.simulation import SimulationConfig, run_simulation

pytestmark = pytest.mark.slow


def test_twelve_simulated_minutes_at_five_requests_a_minute(small_catalog, monkeypatch):
    monkeypatch.delenv("MASSIVE_REDIS_URL", raising=False)
    config = SimulationConfig(start=pd.Timestamp("2026-10-14T14:00:00Z"), minutes=12, speedup=10.0, workers=4)
    report = run_simulation(load_catalog(small_catalog), config)
    print(report.format())

    assert report.rejected_429 == 0
    assert report.max_in_window <= 5
    assert all(admitted <= 5 for _, admitted, _ in report.per_minute)
    # the 14:00, 14:05 and 14:10 ticks each refreshed every critical symbol before the next tick
    assert [c.symbol for c in report.critical] == ["EURUSD", "XAUUSD", "BTCUSD"]
    for check in report.critical:
        assert check.ticks == 3 and check.on_time == 3, (check.symbol, check.problems)
    # GBPUSD (high) and SPX500 (medium, NYSE open) fit the budget: both stay within their 6-minute limit
    for check in report.secondary:
        assert check.ok, (check.symbol, check.verdict)
        assert check.refreshes >= 2, (check.symbol, check.verdict)
        assert check.max_lag is not None and check.max_lag <= check.limit, (check.symbol, check.verdict)
    assert all(run.success for run in report.runs), [r for r in report.runs if not r.success]
    purposes = {run.purpose for run in report.runs}
    assert {"priority_refresh", "snapshots", "secondary_refresh", "weekly_refresh"} <= purposes
    assert report.ok
