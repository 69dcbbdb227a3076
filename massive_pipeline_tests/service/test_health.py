"""`GET /health` and the 503s: each backend's state, and an unreachable store named by its masked URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from massive_pipeline_tests.processes import free_port
from massive_pipeline_tests.service.conftest import Served, serve

PASSWORD = "pw-that-must-stay-hidden"


def test_health_is_200_when_store_instance_and_limiter_answer(served: Served, client):
    answer = client.get("/health")
    assert answer.status_code == 200
    checks = answer.json()["checks"]
    assert {name: c["state"] for name, c in checks.items()} == {
        "store": "ok",
        "instance": "ok",
        "limiter": "ok",
    }
    assert checks["store"]["dialect"] == ("sqlite" if served.backend == "sqlite" else "postgresql")
    assert checks["instance"]["dagster_home"] == str(served.dagster_home)
    assert checks["limiter"]["backend"].startswith("sqlite:")


# an instance whose run storage module does not exist: Dagster refuses to open it
BROKEN_INSTANCE = "run_storage:\n  module: no_such_storage_module\n  class: NoSuchRunStorage\n"


@pytest.fixture(scope="module")
def down(tmp_path_factory) -> Iterator[Served]:
    """A service whose store (PostgreSQL) and limiter (Redis) are servers nobody listens on, and whose
    Dagster instance cannot be opened.

    Redis because its client fails at once; the limiter's PostgreSQL pool waits 10 s for a server.
    """
    port = free_port()  # free now, and nothing here starts a server on it
    url = f"postgresql+psycopg://massive:{PASSWORD}@127.0.0.1:{port}/candles?connect_timeout=2"
    yield from serve(
        tmp_path_factory.mktemp("service_down"),
        url,
        "postgres (down)",
        instance_yaml=BROKEN_INSTANCE,
        MASSIVE_RATE_LIMIT_URL=f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
    )


def test_health_names_what_is_down(down: Served):
    with down.client() as client:
        answer = client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    checks = body["checks"]
    assert body["status"] == "unavailable"
    assert {name: c["state"] for name, c in checks.items()} == {
        "store": "unavailable",
        "instance": "unavailable",
        "limiter": "unavailable",
    }
    assert "***" in checks["store"]["store"] and "127.0.0.1:" in checks["store"]["reason"]
    assert "not reachable" in checks["limiter"]["reason"] and "redis://:***@" in checks["limiter"]["reason"]
    assert checks["instance"]["reason"].startswith(
        f"Unavailable: Dagster instance {down.dagster_home} is unavailable"
    )
    assert PASSWORD not in answer.text


@pytest.mark.parametrize(
    "path",
    ["/candles?symbol=EURUSD&timeframe=M1", "/symbols", "/symbols/EURUSD", "/gaps", "/revisions", "/status"],
)
def test_an_unreachable_store_is_503_naming_it(down: Served, path: str):
    with down.client() as client:
        answer = client.get(path)
    assert answer.status_code == 503, answer.text
    detail = answer.json()["detail"]
    assert (
        detail.startswith("candle store postgresql+psycopg://massive:***@127.0.0.1:")
        and "unavailable" in detail
    )
    assert "\n" not in detail and PASSWORD not in answer.text


def test_an_instance_that_cannot_be_opened_is_503_naming_it(down: Served):
    with down.client() as client:
        answer = client.post("/sync", json={"symbol": "EURUSD", "start": "2026-10-01", "end": "2026-10-02"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"].startswith(f"Dagster instance {down.dagster_home} is unavailable: ")


def test_bad_parameters_are_still_named_while_the_store_is_down(down: Served):
    with down.client() as client:
        answer = client.get("/candles", params={"symbol": "EURUSD", "timeframe": "M9"})
    assert answer.status_code == 422 and answer.json()["parameter"] == "timeframe"
