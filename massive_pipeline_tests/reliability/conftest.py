"""Shared pieces of the reliability suite: a pipeline environment for CLI subprocesses, clean
reference stores, and the figures each case records.

Each case records what it measured (rows compared, retries seen, time to recover) with the
`figures` fixture; they are printed at the end of the pytest run and written to
test-artifacts/reliability/<case>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, Definitions

from massive_pipeline.candles.assets import build_candle_assets
from massive_pipeline.candles.jobs import build_candle_jobs
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import parse_timeframes
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY, CandleIOManager
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.processes import ROOT, Proc, cli, pipeline_env, start

ARTIFACTS = ROOT / "test-artifacts" / "reliability"
# A fixed server clock: every run of a case, and its clean reference, sees the same bars.
SERVER_NOW = "2026-10-20T00:00:00Z"
CATALOG = """\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2026-09-01}
  - {symbol: XAUUSD, ticker: "C:XAUUSD", asset_class: metal, priority: critical, calendar: metals, start: 2026-09-01}
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2026-09-01}
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2026-09-01}
"""

_RECORDED: list[tuple[str, dict[str, Any]]] = []


@dataclass
class Figures:
    case: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    fig = Figures(request.node.name)
    yield fig
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in fig.case)
    (ARTIFACTS / f"{safe}.json").write_text(json.dumps(fig.values, indent=2, default=str))
    _RECORDED.append((fig.case, fig.values))
    print(f"\n{fig.case}: {json.dumps(fig.values, default=str)}")


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook signature
    if not _RECORDED:
        return
    terminalreporter.section("reliability figures")
    for case, values in _RECORDED:
        terminalreporter.write_line(f"{case}: {json.dumps(values, default=str)}")


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return path


@pytest.fixture
def server() -> Iterator[DevServer]:
    with DevServer(port=0, now=SERVER_NOW) as srv:
        yield srv


@dataclass
class PipelineRun:
    """Launches `massive-pipeline` subprocesses with one DAGSTER_HOME, store and server."""

    home: Path
    env: dict[str, str]
    logs: Path
    count: int = 0

    def start(self, *args: str, name: str | None = None) -> Proc:
        self.count += 1
        label = name or f"massive-pipeline {' '.join(args)}"
        return start(cli(*args), env=self.env, log=self.logs / f"cli-{self.count}.log", name=label)

    def run(self, *args: str, timeout: float = 300) -> tuple[int, str, float]:
        """Exit code, output and wall time of one CLI invocation."""
        began = time.monotonic()
        proc = self.start(*args)
        code = proc.wait(timeout)
        return code, proc.output(20000), time.monotonic() - began


def make_pipeline(root: Path, server: DevServer, catalog: Path, database_url: str, api_key: str = "reliability-key",
                  ) -> PipelineRun:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    env = pipeline_env(
        DAGSTER_HOME=str(home),
        MASSIVE_BASE_URL=server.url,
        MASSIVE_API_KEY=api_key,
        MASSIVE_CATALOG=str(catalog),
        MASSIVE_DATABASE_URL=database_url,
        MASSIVE_RATE_LIMIT_PER_MINUTE="100000",
        MASSIVE_RATE_LIMIT_URL=f"sqlite:///{root / 'limiter.sqlite'}",
    )
    # Create the instance's SQLite storage up front, as any used DAGSTER_HOME has it: two processes
    # creating a brand-new instance at the same moment race in Dagster's own schema stamping.
    with DagsterInstance.from_config(str(home)):
        pass
    return PipelineRun(home, env, root / "logs")


def backfill_args(symbols: str, timeframes: str, start: str, end: str) -> list[str]:
    return ["backfill", "--symbols", symbols, "--timeframes", timeframes, "--start", start, "--end", end]


def reference_store(root: Path, server: DevServer, catalog: Path, symbols: str, timeframes: str, start: str,
                    end: str) -> str:
    """A clean run of the same backfill, in this process and without faults: the expected store.

    Returns the SQLite URL of the reference store (checksums are backend-independent).
    """
    root.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / 'reference.sqlite'}"
    cat = load_catalog(catalog)
    defs = Definitions(
        assets=build_candle_assets(cat),
        jobs=build_candle_jobs(cat),
        resources={
            "massive": MassiveResource(api_key="reference-key", base_url=server.url, rate_limit_per_minute=100_000,
                                       limiter_url=f"sqlite:///{root / 'limiter.sqlite'}"),
            "candle_store": CandleStoreResource(database_url=url),
            CANDLE_IO_MANAGER_KEY: CandleIOManager(database_url=url),
        },
    )
    with DagsterInstance.ephemeral() as instance:
        summaries = run_candle_backfill(defs, instance, cat.select(symbols), parse_timeframes(timeframes),
                                        dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    assert all(s.success for s in summaries)
    return url
