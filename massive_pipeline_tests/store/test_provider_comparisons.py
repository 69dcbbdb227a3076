"""`provider_comparisons` on SQLite and PostgreSQL: one row per pair, timeframe and partition, upserted,
and the newest partition of each pair read back for the status report."""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.store import CandleStore

AT = pd.Timestamp("2026-10-14 12:00", tz="UTC")


def _fields(bars: int, over: int, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "bars_compared": bars, "median_rel_diff": 1e-4, "max_rel_diff": 0.02, "bars_over_tolerance": over,
        "tolerance": 0.005, "basis": 0.0015,
    }
    fields.update(overrides)
    return fields


def test_a_partition_compared_again_replaces_its_row(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", "2026-10-14", compared_at=AT, **_fields(900, 1))
    store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", "2026-10-13", compared_at=AT, **_fields(1440, 0))
    later = AT + pd.Timedelta(minutes=5)
    store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", "2026-10-14", compared_at=later,
                                     **_fields(905, 3, basis=0.0016))
    rows = store.provider_comparisons("BTCUSD")
    assert rows[["partition", "bars_compared", "bars_over_tolerance"]].values.tolist() == [
        ["2026-10-13", 1440, 0], ["2026-10-14", 905, 3],
    ]
    today = rows.iloc[1]
    assert today["basis"] == pytest.approx(0.0016) and today["compared_at"] == later
    assert today[["symbol", "other_symbol", "timeframe"]].tolist() == ["BTCUSD", "BTCUSDT", "M1"]


def test_latest_is_the_newest_partition_of_each_pair_and_timeframe(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    for day in ("2026-10-12", "2026-10-14", "2026-10-13"):
        store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", day, compared_at=AT, **_fields(1440, 0))
    store.record_provider_comparison("ETHUSD", "ETHUSDT", "M5", "2026-10-01", compared_at=AT,
                                     **_fields(0, 0, median_rel_diff=None, max_rel_diff=float("nan"), basis=None))
    latest = store.latest_provider_comparisons()
    assert latest[["symbol", "other_symbol", "timeframe", "partition"]].values.tolist() == [
        ["BTCUSD", "BTCUSDT", "M1", "2026-10-14"], ["ETHUSD", "ETHUSDT", "M5", "2026-10-01"],
    ]
    eth = latest.iloc[1]
    assert pd.isna(eth["median_rel_diff"]) and pd.isna(eth["max_rel_diff"]) and pd.isna(eth["basis"])


def test_fields_are_checked_before_anything_is_written(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    with pytest.raises(ValueError, match="unknown or missing: \\['basis'\\]"):
        store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", "2026-10-14",
                                         **{k: v for k, v in _fields(1, 0).items() if k != "basis"})
    with pytest.raises(ValueError, match="partition must be a key"):
        store.record_provider_comparison("BTCUSD", "BTCUSDT", "M1", "", **_fields(1, 0))
    with pytest.raises(ValueError, match="symbol"):
        store.record_provider_comparison("btc usd", "BTCUSDT", "M1", "2026-10-14", **_fields(1, 0))
    assert store.provider_comparisons().empty
