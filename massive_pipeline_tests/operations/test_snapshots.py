"""The snapshots asset against the bundled server, publishing to the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pandas as pd
import pytest
import redis
from dagster import build_schedule_context, instance_for_test
from sqlalchemy import func, select

from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.settings import PURPOSE_TAG, REQUESTED_AT_TAG
from massive_pipeline.operations.snapshots import SNAPSHOTS_JOB
from massive_pipeline.store import CandleStore
from massive_pipeline.store.schema import snapshots
from massive_pipeline_tests.conftest import redis_test_url

REDIS_URL = redis_test_url()
CRITICAL = ("EURUSD", "XAUUSD", "BTCUSD")


@pytest.fixture
def env(pipeline_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    pipeline_env.now = "2026-10-07T12:00:30Z"  # a Wednesday: every market trades
    return pipeline_env


def _materialize():
    job = build_definitions(load_catalog()).get_repository_def().get_job(SNAPSHOTS_JOB)
    with instance_for_test() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def _await_messages(pubsub, count: int, timeout: float = 15.0) -> list[dict]:
    """Messages as they arrive, until `count` came or the deadline passed."""
    deadline = time.monotonic() + timeout
    out: list[dict] = []
    while len(out) < count and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=min(1.0, deadline - time.monotonic()))
        if message is not None and message["type"] == "message":
            out.append({"channel": message["channel"].decode(), **json.loads(message["data"])})
    return out


@pytest.mark.redis
def test_snapshots_are_stored_and_published_to_a_real_subscriber(env, monkeypatch):
    monkeypatch.setenv("MASSIVE_REDIS_URL", REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(*(f"asset:update:{s}" for s in CRITICAL))
    deadline = time.monotonic() + 10
    confirmed = 0
    while confirmed < len(CRITICAL) and time.monotonic() < deadline:  # subscribed before anything is published
        message = pubsub.get_message(timeout=1.0)
        confirmed += bool(message and message["type"] == "subscribe")
    assert confirmed == len(CRITICAL)

    result = _materialize()
    assert result.success
    messages = _await_messages(pubsub, len(CRITICAL))
    pubsub.close()
    client.close()

    assert sorted(m["symbol"] for m in messages) == sorted(CRITICAL)
    stored = CandleStore().latest_snapshots().set_index("symbol")
    for m in messages:
        assert m["channel"] == f"asset:update:{m['symbol']}"
        assert m["type"] == "snapshot"
        row = stored.loc[m["symbol"]]
        for field in ("bid", "ask", "spread", "last"):
            assert m[field] == pytest.approx(row[field]) if not pd.isna(row[field]) else m[field] is None, field
        assert pd.Timestamp(m["timestamp"]) == row["quote_ts"]
        assert pd.Timestamp(m["timestamp"]) <= pd.Timestamp("2026-10-07T12:00:30Z")
    fx = next(m for m in messages if m["symbol"] == "EURUSD")
    assert fx["bid"] < fx["ask"] and fx["spread"] == pytest.approx(fx["ask"] - fx["bid"])
    assert fx["day_low"] <= fx["last"] <= fx["day_high"]

    # one universal-snapshot request for all three, from the critical reserve
    snapshot_requests = [r for r in env.requests if r.kind == "snapshot"]
    assert [r.path for r in snapshot_requests] == ["/v3/snapshot"]
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert meta["snapshots_stored"].value == 3
    assert meta["api_requests"].value == 1
    assert meta["published"].value == {s: 1 for s in CRITICAL}  # one subscriber each


def test_history_is_kept_and_nothing_is_published_without_a_redis_url(env, monkeypatch):
    monkeypatch.delenv("MASSIVE_REDIS_URL", raising=False)
    assert _materialize().success
    env.now = "2026-10-07T12:05:30Z"
    result = _materialize()
    assert result.success
    meta = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert "off" in meta["published"].value
    store = CandleStore()
    latest = store.latest_snapshots().set_index("symbol")
    assert sorted(latest.index) == sorted(CRITICAL)
    assert (latest["quote_ts"] > pd.Timestamp("2026-10-07T12:04Z")).all()
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(snapshots)).scalar_one() == 6  # history kept


@pytest.mark.redis
def test_an_unreachable_redis_fails_the_run_without_showing_its_password(env, monkeypatch):
    secret = uuid.uuid4().hex
    monkeypatch.setenv("MASSIVE_REDIS_URL", f"redis://:{secret}@127.0.0.1:1/0")
    result = _materialize()
    assert not result.success
    [failure] = result.get_step_failure_events()
    text = failure.step_failure_data.error.to_string()
    assert "127.0.0.1:1" in text and "***" in text
    assert secret not in text
    # the snapshots were stored before publishing was attempted
    assert sorted(CandleStore().latest_snapshots()["symbol"]) == sorted(CRITICAL)


# -- snapshots not on the plan ----------------------------------------------------------------------


def _run_snapshots(instance, tick: str):
    """A snapshot run as the schedule would launch it at `tick` (its requested-at tag)."""
    job = build_definitions(load_catalog()).get_repository_def().get_job(SNAPSHOTS_JOB)
    return job.execute_in_process(instance=instance, raise_on_error=False,
                                  tags={PURPOSE_TAG: "snapshots", REQUESTED_AT_TAG: tick})


def _tick(instance, at: str):
    defs = build_definitions(load_catalog())
    schedule = defs.get_repository_def().get_schedule_def("priority_refresh_snapshots")
    with build_schedule_context(instance=instance, scheduled_execution_time=pd.Timestamp(at).to_pydatetime(),
                                repository_def=defs.get_repository_def()) as context:
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message


def test_snapshots_not_on_the_plan_are_said_once_and_skipped_until_the_next_utc_day(env, monkeypatch):
    monkeypatch.delenv("MASSIVE_REDIS_URL", raising=False)
    env.set_faults(snapshots_not_entitled=True)
    with instance_for_test() as instance:
        env.clear_requests()
        result = _run_snapshots(instance, "2026-10-07T12:00:00Z")
        assert not result.success
        # the universal endpoint, then one single-ticker try per market (forex, crypto): no loop, no retry
        paths = [r.path for r in env.requests if r.kind == "snapshot"]
        assert len(paths) == 3 and paths[0] == "/v3/snapshot"
        assert {p.split("/")[6] for p in paths[1:]} == {"forex", "crypto"}
        [failure] = result.get_step_failure_events()
        text = failure.step_failure_data.error.to_string() + (failure.step_failure_data.user_failure_data.description or "")
        assert "not on this plan" in text and "/v3/snapshot" in text and "free currencies plan" in text
        assert "test-key-123" not in text
        errors = [e for e in instance.all_logs(result.run_id) if e.level == logging.ERROR and "not on this plan" in e.message]
        assert len(errors) == 1

        # the rest of that UTC day: skipped with the reason, without a request
        env.clear_requests()
        for at in ("2026-10-07T12:05:00Z", "2026-10-07T23:55:00Z"):
            requests, skip = _tick(instance, at)
            assert requests == [] and "not entitled" in skip and "/v3/snapshot" in skip
        assert env.request_count(None) == 0

        # the next UTC day asks once more; the plan was upgraded meanwhile
        requests, _ = _tick(instance, "2026-10-08T00:00:00Z")
        assert len(requests) == 1
        env.set_faults(snapshots_not_entitled=False)
        assert _run_snapshots(instance, "2026-10-08T00:00:00Z").success
        requests, _ = _tick(instance, "2026-10-08T00:05:00Z")
        assert len(requests) == 1


def test_a_plan_still_without_snapshots_next_day_is_skipped_again(env, monkeypatch):
    monkeypatch.delenv("MASSIVE_REDIS_URL", raising=False)
    env.set_faults(snapshots_not_entitled=True)
    with instance_for_test() as instance:
        assert not _run_snapshots(instance, "2026-10-07T12:00:00Z").success
        requests, _ = _tick(instance, "2026-10-08T00:00:00Z")
        assert len(requests) == 1
        assert not _run_snapshots(instance, "2026-10-08T00:00:00Z").success
        requests, skip = _tick(instance, "2026-10-08T00:05:00Z")
        assert requests == [] and "checked 2026-10-08 00:00 UTC" in skip
