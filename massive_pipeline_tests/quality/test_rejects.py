"""`rejected_candles`: a bar the provider keeps sending broken is one row counted, not one row per
refresh, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.store import CandleStore
from massive_pipeline.store.side_tables import reject_fingerprint

T0 = pd.Timestamp("2026-10-14 09:00", tz="UTC")


@pytest.fixture
def store(database_url):
    with CandleStore(database_url) as s:
        s.create_schema()
        yield s


def _rejects(n: int = 3) -> pd.DataFrame:
    frame = pd.DataFrame({
        "ts": pd.date_range(T0, periods=n, freq="1min", tz="UTC"),
        "open": [1.1 + i / 1e4 for i in range(n)], "high": 1.09, "low": 1.2, "close": 1.1, "volume": 5.0,
        "vwap": np.nan, "trades": pd.array([None] * n, dtype="Int64"),
    })
    frame["reason"] = "high < low; high < max(open, close)"
    return frame


def test_the_same_rejects_again_are_counted_not_inserted(store):
    bad = _rejects()
    assert store.record_rejects("EURUSD", "M1", bad, run_id="run-1") == 3  # three new rows
    first = store.rejected("EURUSD", "M1")
    assert first["times_seen"].tolist() == [1, 1, 1] and set(first["last_run_id"]) == {"run-1"}
    assert (first["last_seen_at"] == first["rejected_at"]).all()
    for i in range(2, 11):
        assert store.record_rejects("EURUSD", "M1", bad, run_id=f"run-{i}") == 0  # nothing new
    again = store.rejected("EURUSD", "M1")
    assert len(again) == 3 and again["times_seen"].tolist() == [10, 10, 10]
    assert set(again["run_id"]) == {"run-1"} and set(again["last_run_id"]) == {"run-10"}  # first and last run
    assert (again["rejected_at"] == first["rejected_at"]).all()
    assert (again["last_seen_at"] > first["last_seen_at"]).all()
    assert again["fingerprint"].tolist() == first["fingerprint"].tolist()
    assert again[["ts", "open", "high", "low", "reason"]].equals(first[["ts", "open", "high", "low", "reason"]])


def test_a_changed_value_or_reason_is_a_new_reject(store):
    bad = _rejects(2)
    store.record_rejects("EURUSD", "M1", bad, run_id="a")
    changed = bad.copy()
    changed.loc[0, "close"] = 1.1000001  # the provider corrected something, still broken
    changed.loc[1, "reason"] = "high < low"
    assert store.record_rejects("EURUSD", "M1", changed, run_id="b") == 2
    assert store.record_rejects("XAUUSD", "M1", bad, run_id="b") == 2  # another series: its own rows
    assert store.record_rejects("EURUSD", "H1", bad.iloc[:0], run_id="b") == 0
    assert len(store.rejected("EURUSD", "M1")) == 4 and store.rejected("EURUSD", "M1")["times_seen"].max() == 1
    assert len(store.rejected()) == 6


def test_identical_rejects_in_one_call_are_one_row_seen_twice(store):
    bad = _rejects(1)
    twice = pd.concat([bad, bad, _rejects(2).iloc[[1]]], ignore_index=True)
    assert store.record_rejects("EURUSD", "M1", twice, run_id="r") == 2
    assert store.record_rejects("EURUSD", "M1", twice, run_id="s") == 0
    assert store.rejected("EURUSD", "M1")["times_seen"].tolist() == [4, 2]


def test_nan_fields_and_a_missing_ts_fingerprint_stably(store):
    bad = _rejects(2)
    bad.loc[0, ["high", "low"]] = np.nan
    bad["ts"] = bad["ts"].astype(object)
    bad.loc[1, "ts"] = pd.NaT
    bad["reason"] = ["h is null", "ts missing"]
    assert store.record_rejects("EURUSD", "M1", bad, run_id="r") == 2
    assert store.record_rejects("EURUSD", "M1", bad, run_id="s") == 0
    stored = store.rejected("EURUSD", "M1")
    assert stored["times_seen"].tolist() == [2, 2]
    assert pd.isna(stored.loc[0, "high"]) and pd.isna(stored.loc[1, "ts"])


def test_fingerprints_do_not_depend_on_how_a_value_is_typed():
    row = {"ts": T0, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "volume": 5.0, "vwap": None,
           "trades": None, "reason": "x"}
    same = {**row, "ts": T0.tz_convert("America/New_York"), "volume": 5, "vwap": float("nan")}
    assert reject_fingerprint(row) == reject_fingerprint(same)
    assert reject_fingerprint(row) == reject_fingerprint({**row, "trades": pd.NA, "ts": T0.to_pydatetime()})
    assert reject_fingerprint(row) != reject_fingerprint({**row, "close": 1.1500000000000001 + 1e-15})
    assert reject_fingerprint(row) != reject_fingerprint({**row, "reason": "y"})
    assert len(reject_fingerprint(row)) == 64


def test_rejected_reads_a_window(store):
    store.record_rejects("EURUSD", "M1", _rejects(3), run_id="r")
    window = store.rejected("EURUSD", "M1", T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(minutes=2))
    assert window["ts"].tolist() == [T0 + pd.Timedelta(minutes=1)]
