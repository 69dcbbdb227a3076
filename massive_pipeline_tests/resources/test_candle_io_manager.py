"""The candle IO manager on SQLite and PostgreSQL: downstream assets receive exactly the stored bars.

End to end: EURUSD H1 is materialized from the bundled server through the code location's
jobs, then downstream assets defined beside the code location (`AssetIn` over the candle asset)
run in Dagster and what they received is compared with `CandleStore.read`. The option handling
(forming bars, look-back, bad metadata) is tested on `build_input_context` over a real store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetIn,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    PartitionKeyRange,
    asset,
    build_input_context,
    build_output_context,
    define_asset_job,
    instance_for_test,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.partitions import partitions_for
from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from massive_pipeline.definitions import build_definitions
from massive_pipeline.resources.candle_io_manager import CandleInputError, CandleIOManager
from massive_pipeline.store import CandleStore

H1 = Timeframe.H1
EURUSD_H1 = candle_key("EURUSD", H1)
# Mon 2026-10-05 .. Fri 2026-10-09 stored; the downstream range is the three days in the middle
STORED = (dt.date(2026, 10, 5), dt.date(2026, 10, 9))
RANGE = ("2026-10-06", "2026-10-08")
SERIES_START = dt.date(2025, 6, 1)  # the small catalog's history start: the candle asset's partitions


def _utc(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


@pytest.fixture
def instance(env) -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _downstream_defs(received: dict[str, pd.DataFrame]) -> Definitions:
    """The code location plus two consumers of candles/eurusd/h1 that keep what they were given."""
    pdef = partitions_for(SERIES_START, H1)

    @asset(
        ins={"bars": AssetIn(key=EURUSD_H1)}, partitions_def=pdef, backfill_policy=BackfillPolicy.single_run()
    )
    def ranged_consumer(bars: pd.DataFrame) -> None:
        received["ranged"] = bars

    @asset(ins={"bars": AssetIn(key=EURUSD_H1)})
    def whole_series_consumer(bars: pd.DataFrame) -> None:
        received["all"] = bars

    consumers = Definitions(
        assets=[ranged_consumer, whole_series_consumer],
        jobs=[
            define_asset_job("ranged_job", [ranged_consumer.key]),
            define_asset_job("whole_job", [whole_series_consumer.key]),
        ],
    )
    return Definitions.merge(build_definitions(load_catalog()), consumers)


def _run(defs: Definitions, job: str, instance: DagsterInstance, tags: dict[str, str] | None = None) -> None:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags or {}, raise_on_error=False
    )
    assert result.success, [
        e.message for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE
    ]


def test_downstream_assets_receive_exactly_the_stored_bars(env, instance, database_url):
    catalog = load_catalog()
    summaries = run_candle_backfill(
        build_definitions(catalog), instance, [catalog.get("EURUSD")], [H1], *STORED
    )
    assert all(s.success for s in summaries)
    # the candle assets wrote through the store; Dagster never handed their result to an IO manager
    for s in summaries:
        assert instance.get_records_for_run(s.run_id, of_type=DagsterEventType.HANDLED_OUTPUT).records == []

    received: dict[str, pd.DataFrame] = {}
    defs = _downstream_defs(received)
    _run(
        defs,
        "ranged_job",
        instance,
        {ASSET_PARTITION_RANGE_START_TAG: RANGE[0], ASSET_PARTITION_RANGE_END_TAG: RANGE[1]},
    )
    _run(defs, "whole_job", instance)

    store = CandleStore(database_url)
    try:
        expected = store.read(
            "EURUSD", H1, _utc(RANGE[0]), _utc(RANGE[1]) + pd.Timedelta(days=1), include_forming=False
        )
        everything = store.read("EURUSD", H1, include_forming=False)
    finally:
        store.dispose()
    assert len(expected) == 3 * 24  # three forex weekdays of hours
    assert len(everything) > len(expected)  # the range is not the whole series
    pd.testing.assert_frame_equal(received["ranged"], expected)
    pd.testing.assert_frame_equal(received["all"], everything)
    assert str(received["ranged"]["ts"].dt.tz) == "UTC"


# -- options, on a store written directly ---------------------------------------------------------

FRIDAY = _utc("2026-10-09")
NOW = FRIDAY + pd.Timedelta(hours=10, minutes=30)  # the 10:00 bar is still forming


def _hours(start: pd.Timestamp, n: int, seed: int) -> pd.DataFrame:
    close = 1.1 + np.random.default_rng(seed).random(n) / 100
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="1h", tz="UTC"),
            "open": close - 0.0002,
            "high": close + 0.0005,
            "low": close - 0.0007,
            "close": close,
            "volume": 10.0,
        }
    )


@pytest.fixture
def manager(database_url) -> Iterator[CandleIOManager]:
    """The manager over a store holding Thursday's 24 hours and Friday's first 11 (the last forming)."""
    store = CandleStore(database_url)
    store.create_schema()
    store.write_window(
        "EURUSD", H1, _utc("2026-10-08"), FRIDAY, _hours(_utc("2026-10-08"), 24, 1), source="test", now=NOW
    )
    store.write_window(
        "EURUSD", H1, FRIDAY, FRIDAY + pd.Timedelta(days=1), _hours(FRIDAY, 11, 2), source="test", now=NOW
    )
    store.dispose()
    manager = CandleIOManager(database_url=database_url)
    yield manager
    manager.store.dispose()


def _load(
    manager: CandleIOManager,
    metadata: dict | None = None,
    first: str = "2026-10-09",
    last: str | None = None,
    key: AssetKey | list[str] = EURUSD_H1,
) -> pd.DataFrame:
    with build_input_context(
        name="bars",
        asset_key=key,
        definition_metadata=metadata or {},
        asset_partitions_def=partitions_for(SERIES_START, H1),
        asset_partition_key_range=PartitionKeyRange(first, last or first),
    ) as context:
        return manager.load_input(context)


def test_forming_bars_are_left_out_unless_the_input_asks(manager):
    default = _load(manager)
    assert list(default["ts"]) == list(pd.date_range(FRIDAY, periods=10, freq="1h", tz="UTC"))
    assert default["complete"].all()
    with_forming = _load(manager, {"include_forming": True})
    assert len(with_forming) == 11 and not with_forming["complete"].iloc[-1]
    pd.testing.assert_frame_equal(with_forming.iloc[:10], default)


def test_lookback_prepends_the_bars_before_the_partition(manager):
    plain = _load(manager)
    looked = _load(manager, {"lookback_bars": 5})
    assert list(looked["ts"].iloc[:5]) == list(
        pd.date_range(FRIDAY - pd.Timedelta(hours=5), periods=5, freq="1h", tz="UTC")
    )
    pd.testing.assert_frame_equal(looked.iloc[5:].reset_index(drop=True), plain)
    # asking for more history than is stored gives what there is
    assert len(_load(manager, {"lookback_bars": 100})) == 24 + 10


def test_an_input_covering_every_partition_reads_the_whole_series(manager):
    pdef = partitions_for(SERIES_START, H1)
    keys = pdef.get_partition_keys()
    assert len(_load(manager, first=keys[0], last=keys[-1])) == 24 + 10


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"include_forming": "yes"}, "metadata include_forming must be true or false, got 'yes'"),
        ({"lookback_bars": -1}, "metadata lookback_bars must be a non-negative integer, got -1"),
        ({"lookback_bars": 2.5}, "metadata lookback_bars must be a non-negative integer, got 2.5"),
    ],
)
def test_bad_input_metadata_is_one_line_naming_the_input(manager, metadata, named):
    with pytest.raises(CandleInputError) as err:
        _load(manager, metadata)
    assert str(err.value) == f"input 'bars' from candles/eurusd/h1: {named}"


def test_an_asset_that_is_not_a_candle_series_is_refused(manager):
    with pytest.raises(
        CandleInputError, match=r"^input 'bars' from prices/eurusd: asset key 'prices/eurusd' is not"
    ):
        _load(manager, key=["prices", "eurusd"])


def test_handle_output_stores_nothing_and_refuses_a_value(manager, database_url):
    store = CandleStore(database_url)
    before = store.checksum()
    with build_output_context(asset_key=EURUSD_H1) as context:
        manager.handle_output(context, None)
        assert store.checksum() == before
        with pytest.raises(CandleInputError, match="stores nothing: candles/eurusd/h1 returned a DataFrame"):
            manager.handle_output(context, _hours(FRIDAY, 3, 3))
    assert store.checksum() == before
    store.dispose()
