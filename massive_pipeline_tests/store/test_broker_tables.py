"""The broker tables on SQLite and PostgreSQL: per-file idempotent import, comparisons recorded and read back."""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.store import CandleStore

T0 = pd.Timestamp("2025-03-07 00:00")


def _bars(n: int, shift_hours: int) -> pd.DataFrame:
    server = pd.date_range(T0, periods=n, freq="15min")
    return pd.DataFrame(
        {
            "server_time": server,
            "ts": (server - pd.Timedelta(hours=shift_hours)).tz_localize("UTC"),
            "open": 3300.0,
            "high": 3301.0,
            "low": 3299.0,
            "close": 3300.5,
            "volume": 10.0,
            "real_volume": [None] * n,
            "spread": [12.0] * (n - 1) + [None],
        }
    )


def test_a_file_imported_again_replaces_its_rows_and_other_files_stay(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    assert store.replace_broker_file("icm", "XAUUSD", "M15", "a" * 64, "XAUUSD15.csv", _bars(5, 2)) == 5
    assert store.replace_broker_file("icm", "XAUUSD", "M15", "b" * 64, "XAUUSD15 (2).csv", _bars(3, 2)) == 3
    # the same file placed with another offset: its rows replaced, not added to
    assert store.replace_broker_file("icm", "XAUUSD", "M15", "a" * 64, "XAUUSD15.csv", _bars(5, 3)) == 5
    rows = store.broker_bars("icm", "XAUUSD", "M15")
    assert rows.groupby("file_sha256").size().to_dict() == {"a" * 64: 5, "b" * 64: 3}
    first = store.broker_bars("icm", "XAUUSD", "M15", "a" * 64)
    assert first["server_time"].iloc[0] == T0 and first["ts"].iloc[0] == (
        T0 - pd.Timedelta(hours=3)
    ).tz_localize("UTC")
    assert first["spread"].iloc[-1] is None or pd.isna(first["spread"].iloc[-1])
    assert first["real_volume"].isna().all()


def test_comparisons_are_recorded_with_their_details(database_url):
    store = CandleStore(database_url)
    store.create_schema()
    fields = dict(
        period_start=pd.Timestamp("2025-03-01", tz="UTC"),
        period_end=pd.Timestamp("2025-03-31", tz="UTC"),
        offset_rule="new_york_close",
        time_offset_minutes=180,
        offset_source="detected",
        offset_confidence=0.9,
        bars_compared=100,
        mean_diff=0.35,
        std_diff=0.01,
        max_abs_diff=0.4,
        mean_diff_pips=35.0,
        pip_size=0.01,
        threshold_pips=0.5,
        recommended_offset=None,
        details={"fields": {"close": {"mean": 0.35}}},
        file_sha256="c" * 64,
        file_name="XAUUSD15.csv",
    )
    first = store.record_broker_comparison("icm", "XAUUSD", "M15", **fields)
    second = store.record_broker_comparison("icm", "XAUUSD", "M15", **{**fields, "recommended_offset": 0.35})
    got = store.broker_comparisons("icm", "XAUUSD")
    assert got["id"].tolist() == [first, second]
    assert got["details"].iloc[0] == {"fields": {"close": {"mean": 0.35}}}
    assert pd.isna(got["recommended_offset"].iloc[0]) and got["recommended_offset"].iloc[1] == 0.35
    assert got["period_end"].iloc[0] == pd.Timestamp("2025-03-31", tz="UTC")
    with pytest.raises(ValueError, match="offset_rule must be one of fixed, new_york_close"):
        store.record_broker_comparison("icm", "XAUUSD", "M15", **{**fields, "offset_rule": "ny"})
