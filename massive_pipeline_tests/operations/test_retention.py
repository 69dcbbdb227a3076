"""Weekly retention on SQLite and PostgreSQL: exactly the rows past each limit go, nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations.retention import RETENTION_JOB, RETENTION_OP
from massive_pipeline.store import CandleStore

AS_OF = "2026-10-07"
M1_CUTOFF = pd.Timestamp("2024-10-07T00:00Z")  # 730 days before AS_OF


@pytest.fixture
def store(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    store = CandleStore(database_url)
    store.create_schema()
    yield store
    store.dispose()


def _put(store: CandleStore, symbol: str, tf: Timeframe, stamps: pd.DatetimeIndex) -> None:
    price = np.linspace(1.0, 2.0, len(stamps))
    bars = pd.DataFrame({"ts": stamps, "open": price, "high": price + 0.01, "low": price - 0.01, "close": price,
                         "volume": 1.0})
    store.replace_window(symbol, tf, stamps[0], stamps[-1] + tf.delta, bars)


def _seed(store: CandleStore) -> None:
    noon = pd.date_range("2024-06-01T12:00Z", "2026-10-06T12:00Z", freq="D")
    # one M1 bar a day, plus the two minutes either side of the cutoff
    _put(store, "EURUSD", Timeframe.M1, noon.union(pd.DatetimeIndex([M1_CUTOFF - pd.Timedelta(minutes=1), M1_CUTOFF])))
    _put(store, "EURUSD", Timeframe.H1, noon.floor("h"))
    _put(store, "EURUSD", Timeframe.D1, noon.floor("D"))
    _put(store, "GBPUSD", Timeframe.M1, pd.date_range("2025-06-01T12:00Z", "2026-10-06T12:00Z", freq="D"))


def _run(config: dict):
    defs = build_definitions(load_catalog())
    job = defs.get_repository_def().get_job(RETENTION_JOB)
    with instance_for_test() as instance:
        return job.execute_in_process(run_config={"ops": {RETENTION_OP: {"config": config}}}, instance=instance,
                                      raise_on_error=False)


def test_retention_deletes_exactly_the_rows_past_the_limit(store):
    _seed(store)
    before = store.row_counts().set_index(["symbol", "timeframe"])["rows"]
    old_m1 = store.count("EURUSD", "M1", end=M1_CUTOFF)
    assert old_m1 == 129  # 2024-06-01 .. 2024-10-06 at noon, and 23:59 on the 6th
    checksum_d1 = store.checksum("EURUSD", "D1")

    result = _run({"keep_days": {"M1": 730}, "as_of": AS_OF, "batch_size": 7})
    assert result.success
    after = store.row_counts().set_index(["symbol", "timeframe"])["rows"]
    assert after[("EURUSD", "M1")] == before[("EURUSD", "M1")] - old_m1
    assert store.count("EURUSD", "M1", end=M1_CUTOFF) == 0
    assert store.read("EURUSD", "M1")["ts"].iloc[0] == M1_CUTOFF  # the bar at the cutoff stays
    for series in [("EURUSD", "H1"), ("EURUSD", "D1"), ("GBPUSD", "M1")]:
        assert after[series] == before[series], series
    assert store.checksum("EURUSD", "D1") == checksum_d1

    output = result.output_for_node(RETENTION_OP)
    assert output["deleted"] == old_m1
    assert output["series"] == [{"symbol": "EURUSD", "timeframe": "M1", "cutoff": M1_CUTOFF.isoformat(),
                                 "deleted": old_m1, "batches": 19, "rows_left": int(after[("EURUSD", "M1")])}]
    [observation] = result.get_asset_observation_events()
    obs = observation.asset_observation_data.asset_observation
    assert obs.asset_key == candle_key("EURUSD", Timeframe.M1)
    assert obs.metadata["retention_deleted_rows"].value == old_m1

    # run again: nothing left past the limit
    again = _run({"keep_days": {"M1": 730}, "as_of": AS_OF})
    assert again.output_for_node(RETENTION_OP)["deleted"] == 0
    assert store.row_counts().set_index(["symbol", "timeframe"])["rows"].equals(after)


def test_per_timeframe_limits_from_config(store):
    _seed(store)
    before = store.row_counts().set_index(["symbol", "timeframe"])["rows"]
    result = _run({"keep_days": {"M1": 730, "1h": 365}, "as_of": AS_OF})
    assert result.success
    h1_cutoff = pd.Timestamp("2025-10-07T00:00Z")
    assert store.count("EURUSD", "H1", end=h1_cutoff) == 0
    assert store.count("EURUSD", "H1") == len(pd.date_range("2025-10-07T12:00Z", "2026-10-06T12:00Z", freq="D"))
    assert store.count("EURUSD", "D1") == before[("EURUSD", "D1")]


def test_a_bad_limit_fails_the_run_naming_it(store):
    _seed(store)
    result = _run({"keep_days": {"M7": 30}, "as_of": AS_OF})
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "M7" in failure.step_failure_data.error.message
    assert store.count("EURUSD", "M1", end=M1_CUTOFF) == 129  # nothing deleted
