"""The secondary queue sensor on a real instance: order, budget, deduplication, failures, visibility."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.utils import make_new_run_id

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.publisher import RedisPublisherResource
from massive_pipeline.operations.queue import QueueState
from massive_pipeline.operations.queue_report import read_queue_report
from massive_pipeline.operations.runs import requested_partitions
from massive_pipeline.operations.sensors import SECONDARY_QUEUE_SENSOR
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG, SYMBOL_TAG, OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource
from massive_pipeline.resources.rate_budgets import budget_from_env
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.simulation import code_location

QUEUE_CATALOG = """\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01}
  - {symbol: USDJPY, ticker: "C:USDJPY", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01}
  - {symbol: ETHUSD, ticker: "X:ETHUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2025-06-01}
  - {symbol: AUDUSD, ticker: "C:AUDUSD", asset_class: forex, priority: medium, calendar: forex, start: 2025-06-01}
  - {symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: 2025-06-01,
     fetch: [D1]}
  - {symbol: NZDUSD, ticker: "C:NZDUSD", asset_class: forex, priority: low, calendar: forex, start: 2025-06-01}
"""
DAILY_JOB = "candles_daily_from_2025_06_01"
NOON = pd.Timestamp("2026-10-07T12:00:00Z")  # a Wednesday: forex and crypto open, NYSE not yet


class Clock:
    def __init__(self, now: pd.Timestamp) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now


@pytest.fixture
def setup(pipeline_env, tmp_path: Path, monkeypatch) -> Iterator[dict]:
    catalog_path = tmp_path / "queue-catalog.yaml"
    catalog_path.write_text(QUEUE_CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(catalog_path))
    catalog = load_catalog()
    clock = Clock(NOON)
    store_url = f"sqlite:///{tmp_path}/candles.sqlite"
    monkeypatch.setenv("MASSIVE_DATABASE_URL", store_url)
    resources = {
        "massive": MassiveResource(api_key="test-key-123", base_url=pipeline_env.url, rate_limit_per_minute=5,
                                   limiter_url=f"sqlite:///{tmp_path}/limiter.sqlite"),
        "candle_store": CandleStoreResource(database_url=store_url),
        "redis_publisher": RedisPublisherResource(url=None),
    }
    defs = code_location(catalog, OperationsSettings(clock=clock), resources)
    store = CandleStore(store_url)
    store.create_schema()
    with instance_for_test() as instance:
        yield {"defs": defs, "clock": clock, "store": store, "instance": instance, "resources": resources,
               "server": pipeline_env}
    store.dispose()


def put_bars(store: CandleStore, symbol: str, last: str, minutes: int = 120) -> None:
    """`minutes` M1 bars ending with one that starts at `last`."""
    end = pd.Timestamp(last) + pd.Timedelta(minutes=1)
    ts = pd.date_range(end - pd.Timedelta(minutes=minutes), end, freq="min", inclusive="left")
    price = np.linspace(1.1, 1.2, len(ts))
    bars = pd.DataFrame({"ts": ts, "open": price, "high": price + 0.001, "low": price - 0.001, "close": price,
                         "volume": 10.0})
    store.replace_window(symbol, Timeframe.M1, ts[0], end, bars, source="massive")


def seed_noon(store: CandleStore) -> None:
    put_bars(store, "GBPUSD", "2026-10-07T11:50Z")  # 10 min behind: stale
    put_bars(store, "USDJPY", "2026-10-07T11:57Z")  # 3 min: half its 6-min limit, due
    put_bars(store, "ETHUSD", "2026-10-07T11:59Z")  # fresh
    put_bars(store, "NZDUSD", "2026-10-07T11:40Z")  # stale, but low priority
    put_bars(store, "SPX500", "2026-10-06T19:59Z")  # NYSE closed since yesterday's close: nothing to do
    # AUDUSD: nothing stored at all


def tick(setup: dict, cursor: str | None = None):
    sensor = setup["defs"].get_repository_def().get_sensor_def(SECONDARY_QUEUE_SENSOR)
    with build_sensor_context(instance=setup["instance"], cursor=cursor, resources=setup["resources"],
                              repository_def=setup["defs"].get_repository_def()) as context:
        return sensor.evaluate_tick(context)


def requested(data) -> dict[str, RunRequest]:
    return {r.tags[SYMBOL_TAG]: r for r in data.run_requests}


def add_run(instance: DagsterInstance, symbol: str, status: DagsterRunStatus, requested_at: str) -> str:
    """A queue run in `status`. A failed one is stored started and then failed through its run event, as a
    real run fails: Dagster stamps an inserted run with the database's clock and a run event with the
    process's, so a run inserted as FAILURE would carry a stamp no real failure has."""
    failed = status is DagsterRunStatus.FAILURE
    run = DagsterRun(job_name=DAILY_JOB, run_id=make_new_run_id(),
                     status=DagsterRunStatus.STARTED if failed else status,
                     tags={PURPOSE_TAG: "secondary_refresh", SYMBOL_TAG: symbol, REQUESTED_AT_TAG: requested_at})
    instance.add_run(run)
    if failed:
        instance.report_run_failed(run, message="the provider refused the request")
    return run.run_id


def test_queue_orders_by_tier_then_staleness_within_the_budget(setup):
    seed_noon(setup["store"])
    data = tick(setup)
    # free plan: 5 a minute, 1 reserved for critical symbols; a 30 s tick earns 4 × 30/60 = 2 requests
    runs = requested(data)
    assert sorted(runs) == ["GBPUSD", "USDJPY"]
    for symbol, request in runs.items():
        assert request.job_name == DAILY_JOB
        assert requested_partitions(request) == ("2026-10-07", "2026-10-07")
        assert candle_key(symbol, Timeframe.M1) in request.asset_selection
        assert request.tags[PURPOSE_TAG] == "secondary_refresh"
        assert request.tags["dagster/max_runtime"] == "900"  # run monitoring ends a dead queue run in 15 min
    assert runs["GBPUSD"].tags["massive/queue_position"] == "1"
    assert runs["USDJPY"].tags["massive/queue_position"] == "2"

    report = read_queue_report(setup["store"]).set_index("symbol")
    assert list(report.index) == ["GBPUSD", "USDJPY", "ETHUSD", "AUDUSD", "SPX500", "NZDUSD"]
    assert report.loc["GBPUSD", "state"] == "requested" and report.loc["GBPUSD", "position"] == 1
    assert report.loc["AUDUSD", "state"] == "waiting" and report.loc["AUDUSD", "position"] == 3
    assert "no bars stored" in report.loc["AUDUSD", "reason"] and "waiting for budget" in report.loc["AUDUSD", "reason"]
    assert report.loc["NZDUSD", "state"] == "waiting" and report.loc["NZDUSD", "position"] == 4
    assert report.loc["NZDUSD", "reason"].startswith("behind: lag 20m of 6m")
    assert report.loc["ETHUSD", "state"] == "fresh" and pd.isna(report.loc["ETHUSD", "position"])
    assert report.loc["SPX500", "state"] == "closed"
    assert report.loc["GBPUSD", "lag_seconds"] == 600

    state = json.loads(data.cursor)
    assert state["symbols"]["GBPUSD"]["requested_at"] == "2026-10-07T12:00:00Z"


def test_requests_already_counted_by_the_limiter_shrink_the_tick(setup):
    seed_noon(setup["store"])
    limiter = setup["resources"]["massive"].build_limiter()
    for _ in range(3):  # a backfill somewhere has just spent three non-critical requests
        limiter.acquire(critical=False)
    limiter.close()
    data = tick(setup)
    assert sorted(requested(data)) == ["GBPUSD"]  # 4 unreserved - 3 used = 1
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert "3 taken in the last 30 s still count" in report.loc["USDJPY", "reason"]


def test_a_symbol_with_a_run_in_progress_is_not_requested_again(setup):
    seed_noon(setup["store"])
    run_id = add_run(setup["instance"], "GBPUSD", DagsterRunStatus.STARTED, "2026-10-07T11:59:30Z")
    data = tick(setup)
    assert sorted(requested(data)) == ["AUDUSD", "USDJPY"]  # a started run has already taken its token
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert report.loc["GBPUSD", "state"] == "running" and run_id[:8] in report.loc["GBPUSD", "reason"]
    # one created but not started still owes its request: only one more fits this tick
    add_run(setup["instance"], "USDJPY", DagsterRunStatus.NOT_STARTED, "2026-10-07T11:59:30Z")
    setup["clock"].now = NOON + pd.Timedelta(seconds=30)
    assert sorted(requested(tick(setup, data.cursor))) == ["AUDUSD"]


def test_failures_lower_the_priority_and_three_give_up_until_the_next_day(setup):
    seed_noon(setup["store"])
    instance, server, defs = setup["instance"], setup["server"], setup["defs"]
    first = tick(setup)
    gbp = requested(first)["GBPUSD"]
    server.set_faults(not_entitled=True)  # the provider refuses this one run
    result = defs.get_repository_def().get_job(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=gbp.partition_key, asset_selection=gbp.asset_selection,
        tags=dict(gbp.tags), raise_on_error=False,
    )
    assert not result.success
    server.set_faults(not_entitled=False)

    setup["clock"].now = NOON + pd.Timedelta(seconds=30)
    second = tick(setup, first.cursor)
    state = json.loads(second.cursor)["symbols"]["GBPUSD"]
    assert state["failures"] == 1
    assert "not entitled" in state["last_error"] and "candles__gbpusd__m1" in state["last_error"]
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert report.loc["GBPUSD", "state"] == "backoff" and report.loc["GBPUSD", "failures"] == 1
    assert "GBPUSD" not in requested(second)

    # after the back-off it is due again, one tier lower: behind the other high symbol
    setup["clock"].now = NOON + pd.Timedelta(minutes=3)
    third = tick(setup, second.cursor)
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert report.loc["GBPUSD", "effective_rank"] == 2
    assert list(report.index).index("GBPUSD") > list(report.index).index("USDJPY")

    for _ in range(2):
        add_run(instance, "GBPUSD", DagsterRunStatus.FAILURE, "2026-10-07T12:03:00Z")
    setup["clock"].now = NOON + pd.Timedelta(minutes=4)
    fourth = tick(setup, third.cursor)
    assert json.loads(fourth.cursor)["symbols"]["GBPUSD"]["failures"] == 3
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert report.loc["GBPUSD", "state"] == "given up"
    assert "next daily cycle" in report.loc["GBPUSD", "reason"]
    setup["clock"].now = NOON + pd.Timedelta(minutes=10)
    assert "GBPUSD" not in requested(tick(setup, fourth.cursor))

    # the next UTC day gives it its attempts back
    setup["clock"].now = pd.Timestamp("2026-10-08T00:20:00Z")
    put_bars(setup["store"], "USDJPY", "2026-10-08T00:19Z")
    nextday = tick(setup, fourth.cursor)
    assert json.loads(nextday.cursor)["symbols"]["GBPUSD"]["failures"] == 0
    assert "GBPUSD" in requested(nextday)
    # its last bar is from yesterday noon: one request catches up from that day
    assert requested_partitions(requested(nextday)["GBPUSD"]) == ("2026-10-07", "2026-10-08")


def test_saturday_forex_with_fridays_close_is_not_stale_but_crypto_is(setup):
    store = setup["store"]
    put_bars(store, "GBPUSD", "2026-10-09T20:59Z")  # Friday's last minute (17:00 New York, EDT)
    put_bars(store, "USDJPY", "2026-10-09T20:59Z")
    put_bars(store, "AUDUSD", "2026-10-09T20:59Z")
    put_bars(store, "NZDUSD", "2026-10-09T20:59Z")
    put_bars(store, "SPX500", "2026-10-09T19:59Z")
    put_bars(store, "ETHUSD", "2026-10-10T11:30Z")  # crypto trades all weekend: 30 min behind
    setup["clock"].now = pd.Timestamp("2026-10-10T12:00:00Z")
    data = tick(setup)
    assert sorted(requested(data)) == ["ETHUSD"]
    assert requested_partitions(requested(data)["ETHUSD"]) == ("2026-10-10", "2026-10-10")
    report = read_queue_report(store).set_index("symbol")
    assert set(report[report["state"] == "closed"].index) == {"GBPUSD", "USDJPY", "AUDUSD", "NZDUSD", "SPX500"}


def test_nothing_due_skips_with_the_queue_in_the_reason(setup):
    store = setup["store"]
    for symbol in ("GBPUSD", "USDJPY", "AUDUSD", "NZDUSD", "ETHUSD"):
        put_bars(store, symbol, "2026-10-07T11:59Z")
    put_bars(store, "SPX500", "2026-10-06T19:59Z")
    data = tick(setup)
    assert not data.run_requests
    assert "0 due, 0 requested" in data.skip_message
    for symbol in ("GBPUSD", "AUDUSD", "NZDUSD", "SPX500"):
        assert symbol in data.skip_message
    assert QueueState.from_cursor(data.cursor, NOON.date()).cycle == "2026-10-07"


def test_a_broken_cursor_is_reported_not_ignored():
    with pytest.raises(ValueError, match="secondary queue cursor"):
        QueueState.from_cursor('{"symbols": 3}', NOON.date())


def test_a_just_refreshed_symbol_the_provider_has_nothing_newer_for_waits_and_says_so(setup):
    seed_noon(setup["store"])
    add_run(setup["instance"], "GBPUSD", DagsterRunStatus.SUCCESS, "2026-10-07T11:59:30Z")
    data = tick(setup)
    assert "GBPUSD" not in requested(data)
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert report.loc["GBPUSD", "state"] == "refreshed"
    assert report.loc["GBPUSD", "reason"].startswith("behind: lag 10m of 6m; refreshed at 11:59:30")
    assert json.loads(data.cursor)["symbols"]["GBPUSD"]["refreshed_at"] == "2026-10-07T11:59:30Z"
    # half its limit after that refresh it is asked for again
    setup["clock"].now = pd.Timestamp("2026-10-07T12:03:00Z")
    assert "GBPUSD" in requested(tick(setup, data.cursor))


def test_the_tick_shows_every_budget_and_spends_only_massives(setup, monkeypatch):
    """Binance's weight, spent to the last unit, neither shrinks the queue's Massive budget nor goes
    unseen: the tick's summary shows both budgets."""
    monkeypatch.setenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", "600")
    seed_noon(setup["store"])
    with budget_from_env("binance").build_limiter() as binance, \
            setup["resources"]["massive"].build_limiter() as massive:
        assert binance.backend == massive.backend  # one backend, two budgets
        for _ in range(4):
            binance.acquire(critical=False, weight=120)
        binance.acquire(critical=True, weight=120)
    data = tick(setup)
    assert sorted(requested(data)) == ["GBPUSD", "USDJPY"]  # the same 2 as with no Binance work at all
    report = read_queue_report(setup["store"]).set_index("symbol")
    assert "0 taken in the last 30 s still count" in report.loc["AUDUSD", "reason"]

    for symbol in ("GBPUSD", "USDJPY", "AUDUSD", "NZDUSD", "ETHUSD"):
        put_bars(setup["store"], symbol, "2026-10-07T11:59Z")
    data = tick(setup, data.cursor)
    assert ("rate budgets: massive 0/5 requests used, 5 remaining, 0 waiting; "
            "binance 600/600 weight units used, 0 remaining, 0 waiting") in data.skip_message
