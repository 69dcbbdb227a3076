"""Where a bootstrap resumes: a partition is stored when Dagster recorded it and the store's bars
span it, a closed day at the edge counts, and a lagging series has its tail fetched again."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance

from massive_pipeline.bootstrap.coverage import StoredCoverage
from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore

CATALOG = parse_catalog("""\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: high, calendar: crypto, start: 2026-10-01}
  - {symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: high, calendar: forex, start: 2026-10-03}
""")
BTC, EUR = CATALOG.get("BTCUSD"), CATALOG.get("EURUSD")


def minutes(start: str, end: str) -> pd.DataFrame:
    ts = pd.date_range(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), freq="1min", inclusive="left")
    price = np.full(len(ts), 100.0)
    return pd.DataFrame({"ts": ts, "open": price, "high": price + 1, "low": price - 1, "close": price,
                         "volume": np.ones(len(ts)), "vwap": price, "trades": pd.array([1] * len(ts), dtype="Int64")})


@pytest.fixture
def store(tmp_path) -> Iterator[CandleStore]:
    with CandleStore(f"sqlite:///{tmp_path}/candles.sqlite") as s:
        s.create_schema()
        yield s


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


def materialize(instance: DagsterInstance, symbol: str, keys: list[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(AssetKey(["candles", symbol, "m1"]), partition=key))


def write(store: CandleStore, symbol: str, start: str, end: str) -> None:
    bars = minutes(start, end)
    store.write_window(symbol, Timeframe.M1, bars["ts"].iloc[0], bars["ts"].iloc[-1] + pd.Timedelta(minutes=1), bars,
                       now=pd.Timestamp("2026-11-01", tz="UTC"))


KEYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"]


def test_stored_needs_both_the_record_and_the_bars(store, instance):
    write(store, "BTCUSD", "2026-10-02", "2026-10-05")
    materialize(instance, "btcusd", KEYS[:4])
    now = pd.Timestamp("2026-10-05 00:03", tz="UTC")  # three minutes after the last bar: fresh
    stored = StoredCoverage(instance, store).stored(BTC, Timeframe.M1, KEYS, now)
    # 10-01: recorded, but no bars (a new database, retention): fetched again; 10-05: never recorded
    assert stored == {"2026-10-02", "2026-10-03", "2026-10-04"}
    assert StoredCoverage(None, store).stored(BTC, Timeframe.M1, KEYS, now) == set()


def test_a_lagging_series_has_the_partitions_past_its_data_fetched_again(store, instance):
    write(store, "BTCUSD", "2026-10-02", "2026-10-04 12:00")
    materialize(instance, "btcusd", KEYS[1:4])
    coverage = StoredCoverage(instance, store)
    fresh = coverage.stored(BTC, Timeframe.M1, KEYS, pd.Timestamp("2026-10-04 12:03", tz="UTC"))
    lagging = coverage.stored(BTC, Timeframe.M1, KEYS, pd.Timestamp("2026-10-04 18:00", tz="UTC"))
    assert fresh == {"2026-10-02", "2026-10-03", "2026-10-04"}
    assert lagging == {"2026-10-02", "2026-10-03"}


def test_a_closed_day_before_the_first_bar_counts(store, instance):
    # history starts on a Saturday; forex opens on Sunday 17:00 New York (21:00 UTC in October)
    write(store, "EURUSD", "2026-10-04 21:00", "2026-10-05 10:00")
    keys = ["2026-10-03", "2026-10-04", "2026-10-05"]
    materialize(instance, "eurusd", keys)
    stored = StoredCoverage(instance, store).stored(EUR, Timeframe.M1, keys, pd.Timestamp("2026-10-05 10:02", tz="UTC"))
    assert stored == set(keys)
