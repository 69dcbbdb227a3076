"""The secondary queue with Massive and Binance symbols: each provider's spend its own budget.

One queue orders every non-critical symbol by priority, but a Massive symbol is planned against
Massive's requests and a Binance one against Binance's weight, so one budget spent to the last
unit holds back only its own provider's symbols, and a missing `MASSIVE_API_KEY` only Massive's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, instance_for_test

from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.queue import binance_weight_per_refresh, refresh_cost
from massive_pipeline.operations.queue_report import read_queue_report
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.rate_budgets import budget_from_env
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.operations.test_without_api_key import REASON, SECONDARY_QUEUE, _sensor_tick

NOON = pd.Timestamp("2026-10-07T12:00:00Z")  # a Wednesday: forex and crypto open
CATALOG = parse_catalog("""\
symbols:
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2025-06-01}
  - {symbol: GBPUSD, ticker: "C:GBPUSD", asset_class: forex, priority: high, calendar: forex, start: 2025-06-01}
  - {symbol: AUDUSD, ticker: "C:AUDUSD", asset_class: forex, priority: medium, calendar: forex, start: 2025-06-01}
  - {symbol: ETHUSDT, ticker: ETHUSDT, provider: binance, asset_class: crypto, priority: high, calendar: crypto,
     start: 2025-06-01}
  - {symbol: SOLUSDT, ticker: SOLUSDT, provider: binance, asset_class: crypto, priority: medium, calendar: crypto,
     start: 2025-06-01}
""")
MASSIVE_SYMBOLS, BINANCE_SYMBOLS = ["AUDUSD", "GBPUSD"], ["ETHUSDT", "SOLUSDT"]


@pytest.fixture
def queue(pipeline_env, tmp_path: Path, monkeypatch) -> Iterator[tuple[Definitions, DagsterInstance, CandleStore]]:
    """An empty store (every symbol due), Massive at 5 requests a minute (4 unreserved: 2 a tick),
    Binance at 100 weight (80 unreserved: 40 a tick, both Binance symbols' 7 each)."""
    monkeypatch.setenv("MASSIVE_RATE_LIMIT_PER_MINUTE", "5")
    monkeypatch.setenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", "100")
    url = f"sqlite:///{tmp_path}/candles.sqlite"
    monkeypatch.setenv("MASSIVE_DATABASE_URL", url)
    store = CandleStore(url)
    store.create_schema()
    defs = build_definitions(CATALOG, settings=OperationsSettings(clock=lambda: NOON))
    with instance_for_test() as instance:
        yield defs, instance, store


def _exhaust(provider: str, units: int) -> None:
    with budget_from_env(provider).build_limiter() as limiter:
        limiter.acquire(critical=False, weight=units)


def _tick(queue) -> tuple[list[str], str, pd.DataFrame]:
    defs, instance, store = queue
    requests, skip = _sensor_tick(defs, instance, SECONDARY_QUEUE)
    report = read_queue_report(store).set_index("symbol")
    return sorted(r.tags["massive/symbol"] for r in requests), skip, report


def test_a_binance_refresh_costs_the_weight_of_its_pages() -> None:
    eth = CATALOG.get("ETHUSDT")
    # a day of M1 klines: a page of 1000 (weight 5) and one of 440 (weight 2)
    assert binance_weight_per_refresh(eth) == refresh_cost(eth) == 7
    assert refresh_cost(eth, days=2) == 5 + 5 + 5  # 2880 klines: pages of 1000, 1000 and 880
    assert refresh_cost(CATALOG.get("GBPUSD")) == 1  # Massive counts requests


def test_both_budgets_free_request_both_providers(queue) -> None:
    symbols, _, _ = _tick(queue)
    assert symbols == sorted(MASSIVE_SYMBOLS + BINANCE_SYMBOLS)


def test_massive_exhausted_still_requests_the_binance_symbols(queue) -> None:
    _exhaust("massive", 4)
    symbols, _, report = _tick(queue)
    assert symbols == BINANCE_SYMBOLS
    assert "waiting for budget" in report.loc["GBPUSD", "reason"]
    assert "budget 0 request(s) this tick" in report.loc["GBPUSD", "reason"]


def test_binance_exhausted_still_requests_the_massive_symbols(queue) -> None:
    _exhaust("binance", 80)
    symbols, _, report = _tick(queue)
    assert symbols == MASSIVE_SYMBOLS
    assert "binance budget 0 weight unit(s) this tick" in report.loc["ETHUSDT", "reason"]
    # one queue by priority: the high Binance symbol keeps its place ahead of the Massive ones it waits behind
    assert report.loc["ETHUSDT", "state"] == "waiting" and report.loc["ETHUSDT", "position"] == 1


def test_without_the_massive_key_the_binance_symbols_are_still_requested(queue, monkeypatch) -> None:
    monkeypatch.delenv("MASSIVE_API_KEY")
    symbols, _, report = _tick(queue)
    assert symbols == BINANCE_SYMBOLS
    for symbol in MASSIVE_SYMBOLS:
        assert report.loc[symbol, "state"] == "waiting"
        assert f"not requested: {REASON}" in report.loc[symbol, "reason"]
