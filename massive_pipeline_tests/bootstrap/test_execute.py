"""A bootstrap of three symbols against the bundled server: the requests the plan said, verify ok
for all 24 series, and a second plan that finds nothing left to fetch.

The limiter allows 5 requests per 2-second window (the scaled rate of the rate-limit tests), the
server enforces the same, and its log is the count of record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, in_process_executor

from massive_pipeline.bootstrap.coverage import StoredCoverage
from massive_pipeline.bootstrap.execute import run_plan
from massive_pipeline.bootstrap.plan import Rate, plan_bootstrap
from massive_pipeline.bootstrap.requirements import BOOTSTRAP_TIMEFRAMES
from massive_pipeline.core.catalog import Catalog, load_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.massive.ratelimit import reserve_for
from massive_pipeline.operations.publisher import RedisPublisherResource
from massive_pipeline.quality.verify import verify
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.bootstrap.world import AT, aggs_requests, write_three_symbols

LIMIT, WINDOW = 5, 2.0

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def bootstrap_world(tmp_path: Path, catalog: Catalog) -> Iterator[tuple]:
    """The bundled server at the fixed instant, an instance, the code location of `catalog` over a
    SQLite store, and the scaled rate: (server, instance, massive resource, defs, store, rate)."""
    (tmp_path / "dagster_home").mkdir()
    with DevServer(port=0, rate_limit=LIMIT, rate_window_seconds=WINDOW, now=AT) as srv, \
            DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        massive = MassiveResource(api_key="test-key-123", base_url=srv.url, rate_limit_per_minute=LIMIT,
                                  rate_window_seconds=WINDOW, limiter_url=f"sqlite:///{tmp_path}/limiter.sqlite")
        candle_store = CandleStoreResource(database_url=f"sqlite:///{tmp_path}/candles.sqlite")
        resources = {"massive": massive, "candle_store": candle_store, "redis_publisher": RedisPublisherResource(url=None)}
        defs = build_definitions(catalog, resources=resources, executor=in_process_executor)
        yield srv, instance, massive, defs, candle_store.store, Rate(LIMIT, WINDOW, reserve_for(LIMIT, massive.critical_reserve))


def test_three_symbols_reach_verify_ok_with_the_requests_the_plan_said(tmp_path: Path):
    three_symbols = write_three_symbols(tmp_path)
    catalog = load_catalog(three_symbols)
    with bootstrap_world(tmp_path, catalog) as (srv, instance, massive, defs, store, rate):

        plan = plan_bootstrap(list(catalog), BOOTSTRAP_TIMEFRAMES, AT, rate, coverage=StoredCoverage(instance, store))
        assert len(plan.series) == 24
        # three days: one page of minutes per symbol, and SPX500's fetched D1
        assert [(s.spec.symbol, s.requests) for s in plan.symbols] == [("EURUSD", 1), ("BTCUSD", 1), ("SPX500", 2)]
        # each symbol: one daily run over every daily series (their days coincide), one W1 run
        assert [(r.spec.symbol, "weekly" in r.job_name, r.requests) for r in plan.runs] == [
            ("EURUSD", False, 1), ("EURUSD", True, 0), ("BTCUSD", False, 1), ("BTCUSD", True, 0),
            ("SPX500", False, 2), ("SPX500", True, 0)]

        lines: list[str] = []
        progress = run_plan(defs, instance, plan, on_line=lines.append, limiter_stats=massive.limiter_stats)

        requests = aggs_requests(srv.requests)
        assert len(requests) == progress.requests_used == plan.requests == 4
        assert srv.max_requests_in_window() <= LIMIT
        assert lines[0].startswith("[1/6] EURUSD M1,M5,M15,M30,H1,H4,D1 2026-10-05..2026-10-07: 1 request(s) (planned 1)")
        assert "requests 1 used of 4 planned; budget" in lines[0]
        assert lines[-1].startswith("[6/6] SPX500 W1")
        assert progress.bars["EURUSD M1"] > 0 and progress.bars["SPX500 D1"] == 2

        report = verify(store, [(s, list(BOOTSTRAP_TIMEFRAMES)) for s in catalog], AT)
        assert len(report) == 24
        assert report["status"].tolist() == ["ok"] * 24, report.to_string()

        again = plan_bootstrap(list(catalog), BOOTSTRAP_TIMEFRAMES, AT, rate, coverage=StoredCoverage(instance, store))
        assert again.requests == 0 and again.runs == []
        assert all(s.stored == s.partitions for s in again.series)


def test_a_pair_fills_its_old_day_bars_in_one_request_and_derives_w1_from_d1(tmp_path: Path):
    """A month of EURUSD history, M1, D1 and W1 asked: M1 over its 7 days, the D1 days before them
    one day-aggregate fill (its own run, `provider_days_before`), D1 derived after, W1 from D1."""
    from massive_pipeline.core.timeframes import Timeframe

    path = tmp_path / "catalog.yaml"
    path.write_text('symbols:\n  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: high, '
                    'calendar: forex, start: 2026-09-07}\n')
    catalog = load_catalog(path)
    asked = [Timeframe.M1, Timeframe.D1, Timeframe.W1]
    with bootstrap_world(tmp_path, catalog) as (srv, instance, massive, defs, store, rate):

        plan = plan_bootstrap(list(catalog), asked, AT, rate, coverage=StoredCoverage(instance, store))
        assert [(r.timeframes, r.first, r.last, r.requests, r.provider_days_before) for r in plan.runs] == [
            ([Timeframe.D1], "2026-09-07", "2026-09-30", 1, "2026-10-01"),
            ([Timeframe.M1, Timeframe.D1], "2026-10-01", "2026-10-07", 1, ""),
            ([Timeframe.W1], "2026-09-07", "2026-10-05", 0, ""),
        ]
        progress = run_plan(defs, instance, plan, on_line=lambda line: None)
        spans = [r.path.split("/")[7] for r in aggs_requests(srv.requests)]
        assert spans == ["day", "minute"] and progress.requests_used == plan.requests == 2

        d1 = store.read("EURUSD", Timeframe.D1)
        old = d1["ts"] < AT.normalize() - pd.Timedelta(days=6)
        assert old.any() and set(d1[old]["source"]) == {"massive"}
        assert set(d1[~old]["source"]) == {"derived:M1"}
        w1 = store.read("EURUSD", Timeframe.W1)
        assert set(w1["source"]) == {"derived:D1"} and len(w1) == 5
        assert w1["volume"].sum() == pytest.approx(d1["volume"].sum())
        report = verify(store, [(s, asked) for s in catalog], AT)
        assert report["status"].tolist() == ["ok"] * 3, report.to_string()
        again = plan_bootstrap(list(catalog), asked, AT, rate, coverage=StoredCoverage(instance, store))
        assert again.requests == 0 and again.runs == []
