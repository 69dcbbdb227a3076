"""`POST /sync`: a candle backfill handed to the Dagster instance, visible there with the service's tags."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration

from massive_pipeline.resources.massive import uses_critical_reserve
from massive_pipeline.service.sync import SYNC_PURPOSE
from massive_pipeline_tests.service.conftest import Served


def _instance(served: Served) -> DagsterInstance:
    return DagsterInstance.from_config(str(served.dagster_home))


def test_sync_creates_a_backfill_in_the_instance(served: Served, client):
    answer = client.post(
        "/sync", json={"symbol": "eurusd", "timeframes": ["H1"], "start": "2026-10-01", "end": "2026-10-03"}
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    instance = _instance(served)
    try:
        backfill = instance.get_backfill(body["backfill_id"])
        assert backfill is not None and backfill.status == BulkActionStatus.REQUESTED
        assert backfill.is_asset_backfill
        # a derived timeframe pulls in its base, as the CLI's backfill does
        assert sorted(backfill.asset_selection) == [
            AssetKey(["candles", "eurusd", "h1"]),
            AssetKey(["candles", "eurusd", "m1"]),
        ]
        assert backfill.tags == {
            "massive/purpose": SYNC_PURPOSE,
            "massive/launched_by": "service",
            "massive/symbol": "EURUSD",
        }
        assert backfill.title.startswith("Service sync EURUSD")
    finally:
        instance.dispose()
    assert not uses_critical_reserve(backfill.tags)  # ordinary work: the refresh's reserve stays free
    assert body["expected_runs"] == 1 and body["ui_path"] == f"/runs/b/{body['backfill_id']}"
    assert {r["asset"]: (r["first"], r["last"]) for r in body["ranges"]} == {
        "candles/eurusd/m1": ("2026-10-01", "2026-10-03"),
        "candles/eurusd/h1": ("2026-10-01", "2026-10-03"),
    }
    assert body["daemon_running"] is False


def test_sync_of_all_timeframes_covers_the_weeks_touched(served: Served, client):
    body = client.post(
        "/sync", json={"symbol": "BTCUSD", "timeframes": "all", "start": "2026-10-07", "end": "2026-10-07"}
    ).json()
    ranges = {r["asset"]: (r["first"], r["last"]) for r in body["ranges"]}
    assert len(ranges) == 8 and ranges["candles/btcusd/w1"] == ("2026-10-05", "2026-10-05")
    assert body["expected_runs"] == 2  # the daily run, then the W1 run over its bars


TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("payload", "status", "parameter"),
    [
        ({"symbol": "NOSUCH", "start": "2026-10-01", "end": "2026-10-02"}, 404, "symbol"),
        (
            {"symbol": "EURUSD", "timeframes": ["M7"], "start": "2026-10-01", "end": "2026-10-02"},
            422,
            "timeframes",
        ),
        (
            {"symbol": "EURUSD", "timeframes": [], "start": "2026-10-01", "end": "2026-10-02"},
            422,
            "timeframes",
        ),
        ({"symbol": "EURUSD", "start": "2026/10/01", "end": "2026-10-02"}, 422, "start"),
        ({"symbol": "EURUSD", "start": "2026-10-03", "end": "2026-10-02"}, 422, "end"),
        ({"symbol": "EURUSD", "start": "2026-10-01", "end": TOMORROW}, 422, "end"),
        ({"symbol": "EURUSD", "start": "2020-01-01", "end": "2020-01-31"}, 422, "start"),
        ({"symbol": "EURUSD", "start": "2026-10-01"}, 422, "end"),
        ({"symbol": 5, "start": "2026-10-01", "end": "2026-10-02"}, 422, "symbol"),
    ],
)
def test_bad_sync_requests_are_refused_naming_the_field(served: Served, client, payload, status, parameter):
    instance = _instance(served)
    try:
        before = len(instance.get_backfills())
        answer = client.post("/sync", json=payload)
        assert answer.status_code == status, answer.text
        detail = answer.json()["detail"]
        assert answer.json()["parameter"] == parameter
        assert detail.startswith(f"{parameter}:") or detail.startswith("unknown symbol 'NOSUCH'"), detail
        assert len(instance.get_backfills()) == before  # nothing submitted
    finally:
        instance.dispose()


def test_a_synced_backfill_becomes_a_queued_run_with_the_service_tags(served: Served, client, monkeypatch):
    """What the daemon does next: its backfill iteration (Dagster's own, over the code location loaded
    through a code server as `dagster-daemon run` loads it) turns the backfill into a run in the run
    queue, visible in the instance and the UI's Runs list with the service's tags."""
    body = client.post(
        "/sync", json={"symbol": "XAUUSD", "timeframes": ["M1", "H1"], "start": "2026-10-05", "end": "2026-10-06"}
    ).json()
    monkeypatch.setenv("MASSIVE_CATALOG", str(served.dagster_home.parent / "catalog.yaml"))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", served.store_url)
    monkeypatch.setenv("MASSIVE_AUTOMATION", "stopped")
    monkeypatch.setenv("MASSIVE_API_KEY", "daemon-key")  # the daemon has the key the service never holds
    target = ModuleTarget(module_name="massive_pipeline.definitions", attribute=None, working_directory=None,
                          location_name="massive_pipeline")
    instance = _instance(served)
    try:
        with create_test_daemon_workspace_context(target, instance) as workspace:
            errors = [e for e in execute_backfill_iteration(workspace, logging.getLogger("sync-test")) if e]
        assert not errors, errors[0].to_string()
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": body["backfill_id"]}))
        assert len(runs) == body["expected_runs"] == 1
        run = runs[0]
        assert run.status == DagsterRunStatus.QUEUED  # in the run queue: limits and pools apply from here
        assert sorted(run.asset_selection) == [AssetKey(["candles", "xauusd", "h1"]), AssetKey(["candles", "xauusd", "m1"])]
        assert run.tags["massive/purpose"] == SYNC_PURPOSE and run.tags["massive/symbol"] == "XAUUSD"
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (
            "2026-10-05", "2026-10-06")
    finally:
        instance.dispose()
