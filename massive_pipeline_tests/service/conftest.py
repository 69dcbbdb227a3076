"""A real `massive-pipeline serve` process over a seeded store, on SQLite and on PostgreSQL.

The server is started once per store backend for the whole session (the tests of this folder
share it: they only read, and `POST /sync` only adds backfills to its private instance), as a
subprocess with a free port, and awaited by polling its OpenAPI document, never by sleeping.
`MASSIVE_API_KEY` is a sentinel in the server's environment; every answer the tests receive
through `Served.client` is checked not to contain it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from massive_pipeline.store import CandleStore
from massive_pipeline_tests.conftest import SMALL_CATALOG, _fresh_postgres_database
from massive_pipeline_tests.processes import Proc, cli, free_port, http_ok, pipeline_env, start, wait_until

API_KEY_SENTINEL = "sk-sentinel-7f3a9c-never-in-an-answer"
READY_TIMEOUT = 120.0
# Three forex days, Monday 5 .. Wednesday 7 October 2026 (inclusive), then a forming H1 bar.
FIRST_DAY = pd.Timestamp("2026-10-05", tz="UTC")
DAYS = 3
FORMING_H1 = pd.Timestamp("2026-10-08 00:00", tz="UTC")
REVISED_FROM = pd.Timestamp("2026-10-06 10:00", tz="UTC")
REVISED_BARS = 5


def _bars(timeframe_minutes: int, start: pd.Timestamp, periods: int, seed: int) -> pd.DataFrame:
    """Deterministic bars with full-precision floats and some null vwap/trades."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=periods, freq=f"{timeframe_minutes}min", tz="UTC")
    close = 1.1 + np.cumsum(rng.normal(0, 1e-4, periods))
    spread = rng.random(periods) * 1e-3
    vwap = np.where(np.arange(periods) % 7 == 0, np.nan, close)
    trades = pd.array([None if i % 5 == 0 else int(i * 3 + 1) for i in range(periods)], dtype="Int64")
    return pd.DataFrame(
        {
            "ts": ts,
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.random(periods) * 1000,
            "vwap": vwap,
            "trades": trades,
        }
    )


def seed_store(url: str) -> None:
    """EURUSD M1 and H1 for three days (H1's last hour forming), two gaps, five revised bars."""
    store = CandleStore(url)
    store.create_schema()
    end = FIRST_DAY + pd.Timedelta(days=DAYS)
    m1 = _bars(1, FIRST_DAY, DAYS * 1440, seed=1)
    store.write_window("EURUSD", "M1", FIRST_DAY, end, m1, now=end + pd.Timedelta(hours=1))
    h1 = _bars(60, FIRST_DAY, DAYS * 24 + 1, seed=2)
    store.write_window(
        "EURUSD",
        "H1",
        FIRST_DAY,
        FORMING_H1 + pd.Timedelta(hours=1),
        h1,
        now=FORMING_H1 + pd.Timedelta(minutes=30),
    )
    revised = m1[(m1["ts"] >= REVISED_FROM)].head(REVISED_BARS).copy()
    revised["close"] = revised["close"] + 1e-5
    revised["high"] = revised[["high", "close"]].max(axis=1)
    store.write_window(
        "EURUSD",
        "M1",
        REVISED_FROM,
        REVISED_FROM + pd.Timedelta(minutes=REVISED_BARS),
        revised,
        run_id="revising-run",
        now=end + pd.Timedelta(hours=2),
    )
    store.record_gaps(
        "EURUSD",
        "M1",
        pd.DataFrame(
            {
                "gap_start": [
                    pd.Timestamp("2026-10-05 03:00", tz="UTC"),
                    pd.Timestamp("2026-10-06 04:00", tz="UTC"),
                ],
                "gap_end": [
                    pd.Timestamp("2026-10-05 03:10", tz="UTC"),
                    pd.Timestamp("2026-10-06 04:05", tz="UTC"),
                ],
                "candles_missing": [10, 5],
            }
        ),
    )
    filled = store.gaps("EURUSD", "M1")
    store.set_gap_status(int(filled["id"].iloc[1]), "filled")
    store.dispose()


def check_no_key(response: httpx.Response) -> None:
    """httpx response hook: the Massive API key is in no answer, body or headers."""
    response.read()
    assert API_KEY_SENTINEL not in response.text, response.request.url
    assert all(API_KEY_SENTINEL not in v for v in response.headers.values()), response.request.url


@dataclass
class Served:
    """A running service, its store and its Dagster home."""

    url: str
    store_url: str
    dagster_home: Path
    proc: Proc
    backend: str

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """An HTTP client of the service whose every answer is checked for the API key."""
        return httpx.Client(
            base_url=self.url, timeout=60, headers=headers, event_hooks={"response": [check_no_key]}
        )

    def stored(self, symbol: str, timeframe: str, **kwargs) -> pd.DataFrame:
        store = CandleStore(self.store_url)
        try:
            return store.read(symbol, timeframe, **kwargs)
        finally:
            store.dispose()


def serve(
    tmp: Path, store_url: str, backend: str, instance_yaml: str = "telemetry:\n  enabled: false\n", **env: str
) -> Iterator[Served]:
    """Start `massive-pipeline serve` over `store_url` and stop it afterwards (by its pid)."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_yaml)
    catalog = tmp / "catalog.yaml"
    catalog.write_text(SMALL_CATALOG)
    port = free_port()
    proc = start(
        cli("serve", "--port", str(port)),
        env=pipeline_env(
            **{
                "DAGSTER_HOME": str(home),
                "MASSIVE_DATABASE_URL": store_url,
                "MASSIVE_CATALOG": str(catalog),
                "MASSIVE_API_KEY": API_KEY_SENTINEL,
                "MASSIVE_RATE_LIMIT_URL": f"sqlite:///{tmp}/limiter.sqlite",
                "MASSIVE_AUTOMATION": "stopped",
                **env,
            }
        ),
        log=tmp / "serve.log",
        name=f"massive-pipeline serve ({backend})",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{url}/openapi.json") or not proc.alive(),
            timeout=READY_TIMEOUT,
            what=f"the service on {url} answering",
            on_timeout=proc.output,
        )
        assert proc.alive(), proc.output()
        yield Served(url, store_url, home, proc, backend)
    finally:
        proc.stop()
    assert API_KEY_SENTINEL not in proc.output(tail=10**7)


def _sqlite_url(tmp: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp}/candles.sqlite"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def served(request, tmp_path_factory) -> Iterator[Served]:
    """The service over a seeded store on SQLite and on real PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"service_{request.param}")
    urls = _sqlite_url(tmp) if request.param == "sqlite" else _fresh_postgres_database()
    store_url = next(urls)
    try:
        seed_store(store_url)
        yield from serve(tmp, store_url, request.param)
    finally:
        urls.close()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as c:
        yield c


@pytest.fixture(scope="session")
def seeded_days() -> tuple[dt.date, dt.date]:
    return FIRST_DAY.date(), (FIRST_DAY + pd.Timedelta(days=DAYS - 1)).date()
