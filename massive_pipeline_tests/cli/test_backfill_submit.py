"""`massive-pipeline backfill --submit`: one asset backfill handed to Dagster's daemon.

The CLI adds the backfill and returns; the test then does what `dagster-daemon run` does, one
iteration at a time in this process: the backfill daemon's iteration plans the runs, the run queue
daemon's iteration launches them through the instance's own run launcher (a run worker process per
run, as under `dagster dev`), and the test polls the runs' status until they finish. That is cheaper
than starting `dagster dev` (test_backfill_daemon.py covers that path through the webserver) and
exercises the same daemon code. What the backfill stores must equal what the in-process path
stores; that path runs while the daemon's run works in its own processes, to use both cores.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from massive_pipeline.cli import main
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import CandleStore

pytestmark = pytest.mark.slow

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)
TIMEFRAMES = ("M1", "M5", "H1")
KEYS = [AssetKey(["candles", "eurusd", tf.lower()]) for tf in TIMEFRAMES]
# a Saturday minute: the forex market is closed, so the provider never answers with this bar
STALE_BAR = pd.Timestamp("2026-09-05 12:00", tz="UTC")
BACKFILL_ARGS = ["backfill", "--symbols", "EURUSD", "--timeframes", ",".join(TIMEFRAMES),
                 "--start", START.isoformat(), "--end", END.isoformat(), "--accept-removals"]
IN_PROCESS_LINE = "running in this process (use --submit to hand the backfill to the Dagster daemon)"


def _store_with_a_stale_bar(url: str) -> None:
    """A stored bar the provider's answer lacks: `--accept-removals` must delete it on both paths."""
    store = CandleStore(url)
    store.create_schema()
    bar = pd.DataFrame({"ts": [STALE_BAR], "open": [1.1], "high": [1.2], "low": [1.0], "close": [1.15], "volume": [1.0]})
    store.write_window("EURUSD", "M1", STALE_BAR, STALE_BAR + pd.Timedelta(minutes=1), bar)
    store.dispose()


class Daemon:
    """What `dagster-daemon run` does for a backfill, one step at a time, in this test process.

    The code location is loaded through a gRPC code server (as the daemon loads it), so it and the
    run workers it starts see the environment of the moment the workspace opened, whatever the test
    changes afterwards.
    """

    def __init__(self, instance: DagsterInstance, workspace) -> None:
        self.instance, self.workspace = instance, workspace
        self.queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
        self.logger = logging.getLogger("test_backfill_submit.daemon")

    def tick(self, backfill_id: str) -> BulkActionStatus:
        """One backfill iteration (plan runs, record what finished), then one run-queue iteration."""
        errors = [e for e in execute_backfill_iteration(self.workspace, self.logger) if e is not None]
        assert not errors, errors[0].to_string()
        status = self.instance.get_backfill(backfill_id).status
        if status == BulkActionStatus.REQUESTED:
            list(self.queue.run_iteration(self.workspace))
        return status

    def wait_for_runs(self, backfill_id: str, timeout: float = 240.0) -> None:
        """Poll the instance, with a deadline, until the backfill's runs have finished."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            if all(run.is_finished for run in runs):
                return
            assert time.monotonic() < deadline, [(r.run_id, r.status) for r in runs]
            time.sleep(0.25)  # the runs are other processes: their status in the instance is all there is

    def run_until_done(self, backfill_id: str, max_ticks: int = 10) -> BulkActionStatus:
        for _ in range(max_ticks):
            status = self.tick(backfill_id)
            if status != BulkActionStatus.REQUESTED:
                return status
            self.wait_for_runs(backfill_id)
        raise AssertionError(f"backfill {backfill_id} unfinished after {max_ticks} daemon iterations")


def _series(url: str) -> dict[str, pd.DataFrame]:
    store = CandleStore(url)
    try:
        return {tf: store.read("EURUSD", tf)[["ts", "open", "high", "low", "close", "volume", "vwap", "trades"]]
                for tf in TIMEFRAMES}
    finally:
        store.dispose()


def test_submitted_backfill_runs_in_the_daemon_and_stores_what_the_in_process_path_stores(
    pipeline_env, monkeypatch, tmp_path: Path, capsys,
):
    server = pipeline_env
    submitted_db, in_process_db = f"sqlite:///{tmp_path / 'submitted.sqlite'}", f"sqlite:///{tmp_path / 'inproc.sqlite'}"
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("MASSIVE_AUTOMATION", "stopped")  # the daemon's code location: no schedule or sensor runs
    monkeypatch.setenv("MASSIVE_DATABASE_URL", submitted_db)
    _store_with_a_stale_bar(submitted_db)
    _store_with_a_stale_bar(in_process_db)

    assert main([*BACKFILL_ARGS, "--submit"]) == 0
    out = capsys.readouterr().out
    with DagsterInstance.get() as instance:
        backfills = instance.get_backfills()
        assert len(backfills) == 1
        backfill = backfills[0]
        bid = backfill.backfill_id
        assert backfill.is_asset_backfill and backfill.status == BulkActionStatus.REQUESTED
        assert sorted(backfill.asset_selection) == sorted(KEYS)
        assert backfill.tags["massive/purpose"] == "cli_backfill"
        days = [(START + dt.timedelta(days=i)).isoformat() for i in range(30)]
        subset = backfill.get_asset_backfill_data(build_definitions().resolve_asset_graph()).target_subset
        for key in KEYS:
            assert sorted(subset.partitions_subsets_by_asset_key[key].get_partition_keys()) == days, key
        assert backfill.run_config == {
            "ops": {k.to_python_identifier(): {"config": {"accept_removals": True}} for k in KEYS}
        }
        # returned without waiting: nothing ran, and the output says where to look and that a daemon must run
        assert instance.get_runs() == [] and server.request_count(kind="aggs") == 0
        assert f"submitted backfill {bid}" in out and f"/runs/b/{bid}" in out and f"dagster/backfill={bid}" in out
        assert "massive-pipeline status --symbols EURUSD" in out and "will launch 1 run(s)" in out
        assert "no Dagster daemon is running" in out and "dagster-daemon run" in out
        assert IN_PROCESS_LINE not in out

        target = ModuleTarget(module_name="massive_pipeline.definitions", attribute=None, working_directory=None,
                              location_name="massive_pipeline")
        with create_test_daemon_workspace_context(target, instance) as workspace:
            daemon = Daemon(instance, workspace)
            assert daemon.tick(bid) == BulkActionStatus.REQUESTED  # plans and launches the first run
            # While that run works in its own processes, the in-process path fills a second store
            # under a second instance (the code server and its run workers keep the first ones).
            monkeypatch.setenv("MASSIVE_DATABASE_URL", in_process_db)
            monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "in_process_home"))
            assert main(BACKFILL_ARGS) == 0
            assert IN_PROCESS_LINE in capsys.readouterr().out
            daemon.wait_for_runs(bid)
            assert daemon.run_until_done(bid) == BulkActionStatus.COMPLETED_SUCCESS

        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": bid}))
        # single-run backfill policy: the 30 days of all three timeframes in one run
        assert len(runs) == 1
        run = runs[0]
        assert run.status == DagsterRunStatus.SUCCESS
        assert sorted(run.asset_selection) == sorted(KEYS)
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
            days[0], days[-1])
        assert run.tags["massive/purpose"] == "cli_backfill" and run.tags["massive/symbol"] == "EURUSD"
    assert server.request_count(kind="aggs") == 2  # one ranged request for the 30 days on each path

    submitted, in_process = _series(submitted_db), _series(in_process_db)
    for tf in TIMEFRAMES:
        assert len(submitted[tf]) == len(in_process[tf]) > 0, tf
        pd.testing.assert_frame_equal(submitted[tf], in_process[tf], obj=tf)
        assert STALE_BAR not in set(submitted[tf]["ts"]), tf
    assert len(submitted["M1"]) > 20 * 1300  # about 22 forex weekdays of minutes
    print({tf: len(frame) for tf, frame in submitted.items()})


def test_in_process_backfill_says_so(pipeline_env, monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path / 'candles.sqlite'}")
    assert main(["backfill", "--symbols", "BTCUSD", "--timeframes", "D1", "--start", "2026-10-07",
                 "--end", "2026-10-07"]) == 0
    out = capsys.readouterr().out
    assert out.count(IN_PROCESS_LINE) == 1
    assert "submitted backfill" not in out


def test_one_backfill_covers_weekly_assets_and_several_partitions_definitions(
    pipeline_env, monkeypatch, tmp_path: Path, capsys,
):
    # GBPUSD's history starts later, so its assets have partitions definitions of their own
    catalog = tmp_path / "two_starts.yaml"
    catalog.write_text(
        "symbols:\n"
        '  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}\n'
        '  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-09-03}\n'
    )
    monkeypatch.setenv("MASSIVE_CATALOG", str(catalog))
    # Wednesday 2 .. Thursday 10 September: W1 covers the weeks of Monday 31 August and 7 September
    assert main(["backfill", "--symbols", "EURUSD,GBPUSD", "--timeframes", "H1,W1", "--start", "2026-09-02",
                 "--end", "2026-09-10", "--submit"]) == 0
    out = capsys.readouterr().out
    with DagsterInstance.get() as instance:
        (backfill,) = instance.get_backfills()
        subset = backfill.get_asset_backfill_data(build_definitions().resolve_asset_graph()).target_subset
        ranges = {key.to_user_string(): sorted(subset.partitions_subsets_by_asset_key[key].get_partition_keys())
                  for key in backfill.asset_selection}
        assert instance.get_runs() == []
    days = [f"2026-09-{d:02d}" for d in range(2, 11)]
    weeks = ["2026-08-31", "2026-09-07"]
    # the derived timeframes pull in their sources, as on the in-process path: M1, and D1 for W1
    # (a forex W1 is the week of the stored D1)
    assert ranges == {f"candles/{s}/{tf}": (weeks if tf == "w1" else days)
                      for s in ("eurusd", "gbpusd") for tf in ("m1", "h1", "d1", "w1")}
    assert not backfill.run_config and "massive/symbol" not in backfill.tags  # no removals asked, several symbols
    # daily and weekly of each symbol: four partitions definitions, four runs
    assert "will launch 4 run(s)" in out
