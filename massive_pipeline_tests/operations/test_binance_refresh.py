"""Binance symbols in the 5-minute priority refresh: scheduled by priority, with or without a Massive key.

Binance's public klines need no key, so where the refresh skips Massive symbols for a missing
`MASSIVE_API_KEY`, a critical Binance symbol of the same job is still requested.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import DagsterInstance, instance_for_test

from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.operations.snapshots import SNAPSHOTS_KEY
from massive_pipeline_tests.operations.test_without_api_key import _schedule_tick

AT = pd.Timestamp("2026-10-07T12:05:00Z")
CATALOG = parse_catalog("""\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2025-06-01}
  - {symbol: BTCUSDT, ticker: BTCUSDT, provider: binance, asset_class: crypto, priority: critical, calendar: crypto,
     start: 2025-06-01}
  - {symbol: ETHUSDT, ticker: ETHUSDT, provider: binance, asset_class: crypto, priority: low, calendar: crypto,
     start: 2025-06-01}
""")
SCHEDULE = "priority_refresh_daily_from_2025_06_01"


@pytest.fixture
def instance(pipeline_env) -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _symbols(monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance, key: str | None) -> list[str]:
    if key is None:
        monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    else:
        monkeypatch.setenv("MASSIVE_API_KEY", key)
    defs = build_definitions(CATALOG, settings=OperationsSettings(clock=lambda: AT))
    requests, _ = _schedule_tick(defs, instance, SCHEDULE)
    return sorted(r.tags["massive/symbol"] for r in requests)


def test_critical_binance_symbols_are_refreshed_with_or_without_a_massive_key(monkeypatch, instance) -> None:
    assert _symbols(monkeypatch, instance, "k") == ["BTCUSD", "BTCUSDT"]  # by priority: the low one is the queue's
    assert _symbols(monkeypatch, instance, None) == ["BTCUSDT"]


def test_binance_symbols_are_not_asked_of_massive_snapshots() -> None:
    defs = build_definitions(CATALOG, settings=OperationsSettings(clock=lambda: AT))
    description = defs.resolve_assets_def(SNAPSHOTS_KEY).descriptions_by_key[SNAPSHOTS_KEY]
    assert "(BTCUSD)" in description
