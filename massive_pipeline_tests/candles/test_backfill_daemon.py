"""A backfill launched as the UI launches it, executed by Dagster's own daemon.

`dagster dev` runs the webserver and the daemon; the test submits a 30-day backfill of EURUSD M1
through the webserver's GraphQL API (the call the UI's "Launch backfill" button makes) and waits for
the daemon to finish it. The bundled server counts the aggregate requests it took.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from massive_pipeline.store import CandleStore

pytestmark = pytest.mark.slow

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}
"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)  # polling an external process: there is nothing to await
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _graphql(port: int, query: str, variables: dict) -> dict:
    resp = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=30)
    resp.raise_for_status()
    body = resp.json()
    assert "errors" not in body, body
    return body["data"]


def test_thirty_day_backfill_through_the_daemon_uses_at_most_two_requests(pipeline_env, tmp_path: Path):
    server = pipeline_env
    db = tmp_path / "candles.sqlite"
    env = dict(os.environ)
    env["MASSIVE_DATABASE_URL"] = f"sqlite:///{db}"
    env["MASSIVE_RATE_LIMIT_PER_MINUTE"] = "5"  # the free plan's budget: a single ranged run fits easily
    env["MASSIVE_AUTOMATION"] = "stopped"  # the 5-minute refresh and the queue would add requests of their own
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "massive_pipeline.definitions", "-h", "127.0.0.1",
         "-p", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=(tmp_path / "dagster-dev.log").open("w"),
        start_new_session=True,
    )
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(ready, 180, "dagster dev to answer")
        first = dt.date(2026, 9, 1)
        partitions = [(first + dt.timedelta(days=i)).isoformat() for i in range(30)]
        launched = _graphql(port, LAUNCH, {"params": {
            "assetSelection": [{"path": ["candles", "eurusd", "m1"]}],
            "partitionNames": partitions,
            "title": "30 days of EURUSD M1",
        }})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished() -> str | None:
            status = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
            return status if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED",
                                        "CANCELED") else None

        status = _wait(finished, 300, "the daemon to finish the backfill", interval=1.0)
        assert status in ("COMPLETED", "COMPLETED_SUCCESS"), (status, (tmp_path / "dagster-dev.log").read_text()[-3000:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    aggs = server.request_count(kind="aggs")
    assert 1 <= aggs <= 2, aggs
    store = CandleStore(f"sqlite:///{db}")
    rows = store.count("EURUSD", "M1")
    store.dispose()
    assert rows > 20 * 1300  # about 22 forex weekdays of minutes, all from those one or two requests
    print(f"30-day backfill through the daemon: {aggs} aggregate request(s), {rows} M1 bars stored")
