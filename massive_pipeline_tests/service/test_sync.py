"""`POST /sync`: a candle backfill handed to the Dagster instance, visible there with the service's tags."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.execution.backfill import BulkActionStatus

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
