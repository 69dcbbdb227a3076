"""Fixtures shared by the pipeline tests: the bundled server, a real PostgreSQL database, and an
environment that points the code location at both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from massive_pipeline.testing.binance_server import BinanceServer
from massive_pipeline.testing.devserver import DevServer

SHIFTED_CLOCK_ENV = "MASSIVE_TEST_SHIFTED_CLOCK"


def pytest_configure(config: pytest.Config) -> None:
    """Under `scripts/test-at-clock.sh`, refuse to run unless the clock really is at the asked instant,
    so a run that claims a Saturday cannot quietly run on today's date."""
    instant = os.environ.get(SHIFTED_CLOCK_ENV)
    if not instant:
        return
    asked = datetime.fromisoformat(instant).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if abs((now - asked).total_seconds()) > 3600:
        raise pytest.UsageError(f"{SHIFTED_CLOCK_ENV}={instant} but the clock says {now:%Y-%m-%d %H:%M:%S} UTC: "
                                "scripts/shifted_clock is not on PYTHONPATH")


def redis_test_url() -> str:
    """The real Redis on 127.0.0.1:6379, one database per pytest-xdist worker (`gw0` -> 1, `gw1` -> 2, ...;
    0 outside xdist): the limiter's keys are fixed per budget, so two workers' tests must not share them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    database = int(worker.removeprefix("gw")) + 1 if worker.startswith("gw") else 0
    return f"redis://127.0.0.1:6379/{database}"


PG_ADMIN_URL = os.environ.get("MASSIVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

SMALL_CATALOG = """\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: critical, calendar: metals, start: 2025-06-01}
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2025-06-01}
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01}
  - {symbol: SPX500, ticker: "I:SPX", asset_class: index, priority: medium, calendar: us_equity, start: 2025-06-01,
     fetch: [D1]}
"""


@pytest.fixture
def devserver() -> Iterator[DevServer]:
    with DevServer(port=0) as srv:
        yield srv


# The bundled Binance server's clock in its fixture: pinned, so which kline is forming and which
# minute a request's weight counts in are the same on any day (half a minute into 12:00 UTC).
BINANCE_NOW = "2026-03-31T12:00:30Z"


@pytest.fixture
def binance_server() -> Iterator[BinanceServer]:
    """The bundled Binance-compatible server, its clock frozen at `BINANCE_NOW`."""
    with BinanceServer(port=0, now=BINANCE_NOW, speed=0) as srv:
        yield srv


def _fresh_postgres_database() -> Iterator[str]:
    name = f"massive_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for this test and did not answer: {exc}")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the real server, dropped afterwards."""
    yield from _fresh_postgres_database()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """The candle store on SQLite and on real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/candles.sqlite"
    else:
        yield from _fresh_postgres_database()


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(SMALL_CATALOG)
    return path


@pytest.fixture
def pipeline_env(monkeypatch, tmp_path: Path, devserver: DevServer, small_catalog: Path) -> DevServer:
    """Point the code location at the bundled server, a private DAGSTER_HOME and limiter file."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MASSIVE_BASE_URL", devserver.url)
    monkeypatch.setenv("MASSIVE_API_KEY", "test-key-123")
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_PER_MINUTE", "100000")
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_URL", f"sqlite:///{tmp_path}/limiter.sqlite")
    monkeypatch.setenv("MASSIVE_CATALOG", str(small_catalog))
    monkeypatch.delenv("MASSIVE_DATABASE_URL", raising=False)
    return devserver
