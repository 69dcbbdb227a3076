"""A Binance catalog entry through the pipeline's own backfill path, against the bundled servers.

The acceptance of the second provider: a 30-day BTCUSDT M1 backfill stores every kline once, in
⌈klines ÷ 1000⌉ requests (the bundled Binance server's request log), charged to the limiter's
`binance` budget while the Massive budget stays untouched.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import instance_for_test

from massive_pipeline.binance import klines_weight
from massive_pipeline.candles.assets import candle_key
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import Provider, load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions, default_resources
from massive_pipeline.resources.binance import binance_resource_from_env
from massive_pipeline.resources.massive import massive_resource_from_env
from massive_pipeline.testing.binance_server import BinanceServer

CATALOG = """\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2026-02-01}
  - {symbol: BTCUSDT, ticker: BTCUSDT, provider: binance, asset_class: crypto, priority: high, calendar: crypto,
     start: 2026-02-01}
"""
START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 30)  # 30 UTC days, before the server's frozen now


@pytest.fixture
def env(pipeline_env, binance_server: BinanceServer, monkeypatch, tmp_path: Path, database_url: str):
    catalog = tmp_path / "binance_catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(catalog))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    monkeypatch.setenv("BINANCE_BASE_URL", binance_server.url)
    monkeypatch.delenv("BINANCE_WEIGHT_LIMIT_PER_MINUTE", raising=False)
    return binance_server


def _stored(database_url: str) -> tuple[int, int, set[str]]:
    """(rows, distinct ts, sources) of BTCUSDT M1 in the store."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows, distinct = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT ts) FROM candles WHERE symbol = 'BTCUSDT' AND timeframe = 'M1'")).one()
        sources = {r[0] for r in conn.execute(sa.text("SELECT DISTINCT source FROM candles WHERE symbol = 'BTCUSDT'"))}
    engine.dispose()
    return rows, distinct, sources


def test_thirty_day_minute_backfill_stores_every_kline_once_on_binances_budget(env: BinanceServer,
                                                                               database_url: str) -> None:
    catalog = load_catalog()
    spec = catalog.get("BTCUSDT")
    assert spec.provider is Provider.BINANCE
    massive_limiter = massive_resource_from_env().build_limiter()
    binance_limiter = binance_resource_from_env().build_limiter()
    with instance_for_test() as instance:
        summaries = run_candle_backfill(build_definitions(catalog), instance, [spec], [Timeframe.M1], START, END)
    assert [s.success for s in summaries] == [True]

    asked = env.kline_requests()
    served = sum(r.klines for r in asked)
    rows, distinct, sources = _stored(database_url)
    assert 30 * 1440 * 0.99 < served <= 30 * 1440
    assert rows == distinct == served  # every kline once
    assert len(asked) == math.ceil(served / 1000) == 44 == summaries[0].api_requests
    assert {r.status for r in asked} == {200}
    assert sources == {"binance"}

    weight = sum(klines_weight(r.limit) for r in asked)
    assert weight == asked[-1].used_weight  # the server counted the same weight in its one (frozen) minute
    massive, binance = massive_limiter.stats(), binance_limiter.stats()
    assert (massive.budget, massive.used, massive.acquired, massive.requests) == ("massive", 0, 0, 0)
    # `acquired` counts every unit of weight ever taken; `used` only what the sliding minute still holds,
    # which on a slow machine may already be less once the run's checks are done
    assert (binance.budget, binance.acquired, binance.requests) == ("binance", weight, len(asked))
    assert binance.used <= weight
    massive_limiter.close()
    binance_limiter.close()


def test_a_binance_entry_asks_for_the_binance_resource_only(env: BinanceServer) -> None:
    catalog = load_catalog()
    defs = build_definitions(catalog, resources=default_resources())
    graph = defs.resolve_asset_graph()
    binance_asset = graph.get(candle_key("BTCUSDT", Timeframe.M1)).assets_def
    massive_asset = graph.get(candle_key("BTCUSD", Timeframe.M1)).assets_def
    assert binance_asset.required_resource_keys >= {"binance", "candle_store"}
    assert "massive" not in binance_asset.required_resource_keys
    assert "massive" in massive_asset.required_resource_keys
    assert "binance" not in massive_asset.required_resource_keys

