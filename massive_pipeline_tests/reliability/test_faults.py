"""The bundled server misbehaves in every way at once over a multi-day, multi-symbol backfill:
bursts of 5xx, HTML 504 pages, 429 storms, timeouts, truncated bodies, and rows that break OHLC
rules. The backfill completes, or fails with one clear error naming the run, and every good row
that was fetched is stored while the bad rows are quarantined in `rejected_candles`.

The run executes in this process (the runner the CLI uses) so the client's retry warnings can be
counted from its log records, and with a short HTTP timeout so a delayed answer is a timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions

from massive_pipeline.candles.assets import build_candle_assets
from massive_pipeline.candles.jobs import build_candle_jobs
from massive_pipeline.cli.launch import BackfillError, run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive import MassiveClient
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY, CandleIOManager
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.devserver import DevServer
from massive_pipeline_tests.reliability.conftest import SERVER_NOW, Figures

pytestmark = pytest.mark.slow

START, END = dt.date(2026, 10, 5), dt.date(2026, 10, 11)  # Monday .. Sunday
SYMBOLS = ["EURUSD", "XAUUSD", "BTCUSD"]
# Bad rows go to Saturday bars, which only crypto has (forex and metals are closed), and to the
# symbol run last, so the other symbols' runs happen whatever the checks make of its run.
BAD_SYMBOL = "BTCUSD"
PAGE_SIZE = 1500  # several pages per symbol, so faults land on pages and on retries
TIMEOUT = 1.0
DELAY = 2.5
# Injected one after another, each once the previous one was followed by a good page.
FAULT_SCRIPT: list[dict[str, object]] = [
    {"server_errors_next": 2},
    {"delay_seconds": DELAY},  # -> read timeouts until the delayed answers come back
    {"throttle_429_next": 3, "retry_after_seconds": 0},
    {"html_504_next": 1},
    {"malformed_json_next": 1},
    {"server_errors_next": 1, "throttle_429_next": 2, "retry_after_seconds": 0},
    {"delay_seconds": DELAY},
    {"malformed_json_next": 1, "html_504_next": 1},
]
_RETRY = re.compile(r"attempt \d+ failed \((?P<reason>[^)]*)\)")


@dataclass
class Chaos:
    """Walks FAULT_SCRIPT as the backfill makes progress; a delay is lifted once it bit."""

    server: DevServer
    applied: list[dict[str, object]] = field(default_factory=list)
    delayed_requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _good_pages(self) -> int:
        return sum(1 for r in self.server.requests if r.kind == "aggs" and r.status == 200)

    def _run(self) -> None:
        script = list(FAULT_SCRIPT)
        seen = self._good_pages()
        while script and not self._stop.is_set():
            if self._good_pages() <= seen:
                self._stop.wait(0.01)
                continue
            fault = script.pop(0)
            self.server.set_faults(**fault)
            self.applied.append(fault)
            if "delay_seconds" in fault:
                before = len(self.server.requests)
                # two delayed answers logged: the client has timed out at least twice
                while len(self.server.requests) < before + 2 and not self._stop.is_set():
                    self._stop.wait(0.01)
                self.delayed_requests += len(self.server.requests) - before
                self.server.set_faults(delay_seconds=0.0)
            seen = self._good_pages()

    def __enter__(self) -> Chaos:
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.server.set_faults(delay_seconds=0.0)


@pytest.fixture
def server() -> Iterator[DevServer]:
    with DevServer(port=0, now=SERVER_NOW, page_size=PAGE_SIZE) as srv:
        yield srv


def _window() -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)


def _clean_bars(server: DevServer, ticker: str) -> pd.DataFrame:
    """What the server serves without faults: the reference for every good row."""
    start, end = _window()
    with MassiveClient(server.url, "reference-key") as client:
        bars = client.get_aggregates(ticker, 1, "minute", start, end).bars
    server.clear_requests()
    return bars


def test_backfill_under_every_fault_at_once(tmp_path: Path, server: DevServer, catalog_file: Path,
                                             caplog: pytest.LogCaptureFixture, figures: Figures) -> None:
    catalog = load_catalog(catalog_file)
    specs = [catalog.get(s) for s in SYMBOLS]
    clean = {spec.symbol: _clean_bars(server, spec.ticker) for spec in specs}
    saturday = clean[BAD_SYMBOL][clean[BAD_SYMBOL]["ts"].dt.dayofweek == 5]["ts"]
    bad_ts = saturday.iloc[[10, 200, 700, 1100, 1400]]
    server.set_faults(bad_rows=[int(ts.value // 1_000_000) for ts in bad_ts])

    url = f"sqlite:///{tmp_path / 'candles.sqlite'}"
    defs = Definitions(
        assets=build_candle_assets(catalog),
        jobs=build_candle_jobs(catalog),
        resources={
            "massive": MassiveResource(
                api_key="faults-key", base_url=server.url, rate_limit_per_minute=100_000,
                limiter_url=f"sqlite:///{tmp_path / 'limiter.sqlite'}", timeout_seconds=TIMEOUT, max_retries=6,
            ),
            "candle_store": CandleStoreResource(database_url=url),
            CANDLE_IO_MANAGER_KEY: CandleIOManager(database_url=url),
        },
    )
    caplog.set_level(logging.WARNING, logger="massive_pipeline")
    home = tmp_path / "dagster_home"
    home.mkdir()
    began = time.monotonic()
    error: BackfillError | None = None
    with DagsterInstance.from_config(str(home)) as instance, Chaos(server) as chaos:
        try:
            run_candle_backfill(defs, instance, specs, [Timeframe.M1, Timeframe.H1], START, END)
        except BackfillError as exc:
            error = exc
        runs = {run.tags["massive/symbol"]: run for run in instance.get_runs()}
    seconds = time.monotonic() - began

    if error is not None:  # a failure must be one clear line naming the run, symbol and cause
        message = str(error)
        assert "\n" not in message and re.match(r"run [0-9a-f-]{36} for \w+ ", message), message
    assert set(runs) == set(SYMBOLS), f"every symbol's run must have happened: {sorted(runs)} ({error})"
    assert len(chaos.applied) == len(FAULT_SCRIPT), f"only {chaos.applied} of the faults were injected"

    store = CandleStore(url)
    try:
        compared = 0
        for symbol, reference in clean.items():
            good = reference[~reference["ts"].isin(bad_ts)] if symbol == BAD_SYMBOL else reference
            stored = store.read(symbol, Timeframe.M1)
            cols = ["ts", "open", "high", "low", "close", "volume"]
            pd.testing.assert_frame_equal(stored[cols].reset_index(drop=True), good[cols].reset_index(drop=True),
                                          check_dtype=False)
            compared += len(stored)
        rejected = store.rejected(BAD_SYMBOL, Timeframe.M1)
        assert sorted(rejected["ts"]) == sorted(bad_ts)
        assert all("high < low" in reason for reason in rejected["reason"])
        assert all(len(store.rejected(s, Timeframe.M1)) == 0 for s in SYMBOLS if s != BAD_SYMBOL)
    finally:
        store.dispose()

    retries = Counter()
    for record in caplog.records:
        match = _RETRY.search(record.getMessage())
        if match:
            reason = match["reason"]
            kind = ("504" if reason.startswith("504") else "5xx" if reason[:1] == "5"
                    else "429" if reason.startswith("429") else "timeout" if "Timeout" in reason
                    else "malformed" if "not JSON" in reason else reason)
            retries[kind] += 1
    assert {"timeout", "429", "5xx", "504", "malformed"} <= set(retries), retries
    statuses = Counter(r.status for r in server.requests if r.kind == "aggs")
    figures["outcome"] = "completed" if error is None else f"failed: {error}"
    figures["seconds"] = round(seconds, 2)
    figures["rows_compared"] = compared
    figures["rows_quarantined"] = len(bad_ts)
    figures["retries_seen"] = dict(retries)
    figures["server_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    figures["delayed_requests"] = chaos.delayed_requests
