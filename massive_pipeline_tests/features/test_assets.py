"""The features asset end to end: candles from the bundled server, features through Dagster.

EURUSD H1 is materialized Monday..Friday; the features of one partition are materialized through
the code location (its candle IO manager and its default IO manager) and compared with the
features of the whole stored series, so the look-back is shown to make a partition computable on
its own. The series' first partition has no bars before it: its warm-up rows are NaN and the
checks still pass.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import AssetMaterialization, DagsterInstance, Definitions, define_asset_job, instance_for_test

from massive_pipeline.cli.launch import run_candle_backfill
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.features.assets import FEATURE_TIMEFRAMES, feature_key
from massive_pipeline.features.checks import FEATURE_CHECKS
from massive_pipeline.features.compute import FEATURE_COLUMNS, compute_features
from massive_pipeline.store import CandleStore

H1 = Timeframe.H1
KEY = feature_key("EURUSD", H1)
PARAMS = FEATURE_TIMEFRAMES[H1]
STORED = (dt.date(2026, 10, 5), dt.date(2026, 10, 9))  # Monday .. Friday


@pytest.fixture
def env(pipeline_env, monkeypatch, database_url):
    monkeypatch.setenv("MASSIVE_DATABASE_URL", database_url)
    return pipeline_env


def _materialize(
    instance: DagsterInstance, day: str
) -> tuple[pd.DataFrame, list[AssetMaterialization], dict[str, bool]]:
    """The features of one partition through the code location: value, materializations, check verdicts."""
    defs = Definitions.merge(
        build_definitions(load_catalog()), Definitions(jobs=[define_asset_job("features_job", [KEY])])
    )
    result = defs.resolve_job_def("features_job").execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return result.asset_value(KEY), result.asset_materializations_for_node(KEY.to_python_identifier()), checks


def test_features_of_a_partition_equal_those_of_the_whole_series(env, database_url):
    with instance_for_test() as instance:
        catalog = load_catalog()
        summaries = run_candle_backfill(
            build_definitions(catalog), instance, [catalog.get("EURUSD")], [H1], *STORED
        )
        assert all(s.success for s in summaries)
        store = CandleStore(database_url)
        try:
            series = store.read("EURUSD", H1, include_forming=False)
        finally:
            store.dispose()
        whole = compute_features(series, PARAMS)

        thursday = (whole["ts"] >= pd.Timestamp("2026-10-08", tz="UTC")) & (
            whole["ts"] < pd.Timestamp("2026-10-09", tz="UTC")
        )
        features, [materialization], checks = _materialize(instance, "2026-10-08")
        pd.testing.assert_frame_equal(features, whole[thursday].reset_index(drop=True))
        assert len(features) == 24 and features[list(FEATURE_COLUMNS)].notna().all().all()
        assert materialization.metadata["lookback_rows"].value == PARAMS.warmup
        assert checks == dict.fromkeys(FEATURE_CHECKS, True)

        # Monday is the first stored day: no bars before it, so the warm-up rows have no value
        monday, _, checks = _materialize(instance, "2026-10-05")
        assert monday["realized_vol"].iloc[: PARAMS.vol_window].isna().all()
        assert monday["realized_vol"].iloc[PARAMS.vol_window :].notna().all()
        assert checks == dict.fromkeys(FEATURE_CHECKS, True)
