"""`massive-pipeline bootstrap` as a user runs it: killed with SIGKILL once a symbol is stored, run
again, it fetches only the rest and ends with verify ok for all 24 series.

The command runs as a subprocess against the bundled server (its clock and the command's `--at`
at one fixed Wednesday noon, so the test means the same on any day), at the free plan's 5
requests a minute. The kill waits on a condition: the instance records EURUSD's daily run as
succeeded while the command still runs. The server's request log is the judge of what was asked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.bootstrap.world import AT, aggs_requests, write_three_symbols
from massive_pipeline_tests.processes import pipeline_env, start, wait_until

pytestmark = pytest.mark.slow

FETCHED = {"minute": "m1", "day": "d1"}  # the timespan of a request -> the series it fills


def requested(record, catalog) -> tuple[str, str, pd.Timestamp, pd.Timestamp]:
    """(symbol, series, from, to) of an aggregates request path."""
    parts = record.path.split("/")  # /v2/aggs/ticker/{ticker}/range/{mult}/{span}/{from}/{to}
    spec = catalog.by_ticker(parts[4])
    return (spec.symbol.lower(), FETCHED[parts[7]], pd.Timestamp(int(parts[8]), unit="ms", tz="UTC"),
            pd.Timestamp(int(parts[9]), unit="ms", tz="UTC"))


def test_a_killed_bootstrap_resumes_without_fetching_what_was_stored(tmp_path: Path):
    three_symbols = write_three_symbols(tmp_path)
    catalog = load_catalog(three_symbols)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DevServer(port=0, now=AT) as srv:
        env = pipeline_env(
            MASSIVE_BASE_URL=srv.url, MASSIVE_API_KEY="test-key-123", MASSIVE_CATALOG=str(three_symbols),
            DAGSTER_HOME=str(home), MASSIVE_RATE_LIMIT_PER_MINUTE="5",
            MASSIVE_RATE_LIMIT_URL=f"sqlite:///{tmp_path}/limiter.sqlite",
            MASSIVE_DATABASE_URL=f"sqlite:///{tmp_path}/candles.sqlite",
        )
        argv = [sys.executable, "-m", "massive_pipeline.cli", "bootstrap", "--at", AT.isoformat()]
        first = start(argv, env=env, log=tmp_path / "first.log", name="bootstrap")
        with DagsterInstance.local_temp(str(home)) as instance:
            def eurusd_daily_done() -> bool:
                if not first.alive():
                    raise AssertionError(f"bootstrap ended before the kill:\n{first.output()}")
                runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS],
                                                    tags={"massive/symbol": "EURUSD"}))
                return any(r.job_name.startswith("candles_daily") for r in runs)

            wait_until(eurusd_daily_done, timeout=600, what="EURUSD's daily run", interval=0.1,
                       on_timeout=first.output)
            first.kill9()
            stored = {(key, series): instance.get_materialized_partitions(AssetKey(["candles", key, series]))
                      for key in ("eurusd", "btcusd", "spx500") for series in ("m1", "d1")}
        asked_before = len(srv.requests)
        assert stored[("eurusd", "m1")] == {"2026-10-05", "2026-10-06", "2026-10-07"}

        second = start(argv, env=env, log=tmp_path / "second.log", name="bootstrap again")
        assert second.wait(timeout=900) == 0, second.output()
        out = second.output(tail=20_000)

    again = aggs_requests(srv.requests[asked_before:])
    assert again, f"the kill came after every fetch; nothing was left to resume:\n{out}"
    for record in again:
        symbol, series, lo, hi = requested(record, catalog)
        assert symbol != "eurusd", f"EURUSD was stored, yet {record.path} was asked again"
        for key in stored[(symbol, series)]:  # no stored partition's day is asked again
            day = pd.Timestamp(key, tz="UTC")
            assert hi < day or lo >= day + pd.Timedelta(days=1), f"{record.path} asks stored {symbol} {key} again"
    assert f"API request(s), the plan said {len(again)}" in out
    assert "bootstrap ran" in out and f": {len(again)} API request(s)" in out
    assert "verify: 24 series: 24 ok" in out, out


def test_plan_only_prints_the_packaged_catalogs_plan_without_a_key(tmp_path: Path, monkeypatch, capsys):
    from massive_pipeline.cli import main

    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_PER_MINUTE", "5")
    assert main(["bootstrap", "--plan-only", "--at", "2026-10-07T12:00"]) == 0
    out = capsys.readouterr().out
    assert "plan for 2026-10-07 (46 symbol(s), 368 series): 359 API request(s) in 286 run(s)" in out
    assert "ETA: at least 1 h 29 min of API budget at 5 request(s) per 60 s" in out
    # below both references: every series over its own days, and everything derived from M1
    assert "  this catalog                                        359" in out
    assert "  everything derived from the base (M1)               653" in out
    assert "  each series fetched over its own required days      567" in out
    # GBPUSD fetches M1 over H4's 180 days; D1's older days are one day-aggregate fill, W1 from D1
    eurusd, gbpusd = (("\n" + out).split(f"\n{symbol} (")[1].split("\n\n")[0] for symbol in ("EURUSD", "GBPUSD"))
    for pair in (eurusd, gbpusd):
        assert "  M1      fetched (base)  2026-04-11..2026-10-07  180" in pair
        assert "  D1      fetched (days)  2025-01-01..2026-04-10  645        365 d     465 of 465  1" in pair
        assert "  D1      derived         2026-04-11..2026-10-07  645" in pair
    assert "= 5 request(s) now" in gbpusd


@pytest.mark.parametrize("argv", [["--plan-only"], []])
def test_without_dagster_home_one_line_names_it(monkeypatch, capsys, argv):
    from massive_pipeline.cli import main

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("MASSIVE_API_KEY", "test-key-123")
    assert main(["bootstrap", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("massive-pipeline: error: DAGSTER_HOME is not set")
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--plan-only", "--submit"], "--plan-only and --submit exclude each other"),
    (["--plan-only", "--at", "2999-01-01"], "--at 2999-01-01 00:00 is in the future"),
    (["--plan-only", "--timeframes", "M7"], "unknown timeframe 'M7'"),
])
def test_bad_arguments_get_one_line(tmp_path: Path, monkeypatch, capsys, argv, message):
    from massive_pipeline.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["bootstrap", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_submit_hands_one_backfill_per_symbol_with_each_series_range(tmp_path: Path):
    from massive_pipeline.bootstrap.execute import submit_plan
    from massive_pipeline.bootstrap.plan import Rate, plan_bootstrap
    from massive_pipeline.bootstrap.requirements import BOOTSTRAP_TIMEFRAMES
    from massive_pipeline.definitions import build_definitions
    from massive_pipeline.operations.publisher import RedisPublisherResource
    from massive_pipeline.resources.candle_store import CandleStoreResource
    from massive_pipeline.resources.massive import MassiveResource

    catalog = load_catalog(write_three_symbols(tmp_path))
    resources = {"massive": MassiveResource(api_key="k", limiter_url=f"sqlite:///{tmp_path}/l.sqlite"),
                 "candle_store": CandleStoreResource(database_url=f"sqlite:///{tmp_path}/c.sqlite"),
                 "redis_publisher": RedisPublisherResource(url=None)}
    defs = build_definitions(catalog, resources=resources)
    plan = plan_bootstrap(list(catalog), BOOTSTRAP_TIMEFRAMES, AT, Rate(5))
    with DagsterInstance.ephemeral() as instance:
        submitted = submit_plan(defs, instance, plan)
        records = {b.backfill_id: b for b in instance.get_backfills()}
    assert [s.title for s in submitted] == [f"Bootstrap {sym} M1,M5,M15,M30,H1,H4,D1,W1 to 2026-10-07"
                                           for sym in ("EURUSD", "BTCUSD", "SPX500")]
    for s, sp in zip(submitted, plan.symbols, strict=True):
        assert s.ranges == tuple(r for series in sp.series for r in series.ranges())
        assert s.tags["massive/purpose"] == "bootstrap" and s.tags["massive/symbol"] == sp.spec.symbol
        assert s.expected_runs == 2  # the daily series share one range; W1 its own definition
        assert set(records[s.backfill_id].asset_selection) == {r.key for r in s.ranges}
