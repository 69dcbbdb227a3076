"""Smoke test of the composition root: the code location as `dagster dev` loads it, from the packaged catalog."""

from __future__ import annotations

from dagster import AssetKey

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.definitions import build_definitions
from massive_pipeline.operations import OperationsSettings
from massive_pipeline.quality.checks import CHECKS
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY, CandleIOManager
from massive_pipeline.resources.candle_store import CandleStoreResource


def test_the_code_location_from_the_packaged_catalog(monkeypatch):
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    catalog = load_catalog()
    repo = build_definitions().get_repository_def()
    keys = set(repo.asset_graph.get_all_asset_keys())
    candle_keys = {k for k in keys if k.path[0] == "candles"}
    # eight UTC timeframes per symbol, and D1_NY + W1_NY for the 32 forex and metal symbols
    assert len(candle_keys) == sum(len(spec.timeframes) for spec in catalog) == 46 * 8 + 32 * 2 == 432
    assert len([s for s in catalog if Timeframe.D1_NY in s.timeframes]) == 32
    assert {AssetKey("snapshots"), AssetKey("data_quality_report")} <= keys
    # every candle asset carries every quality check
    assert len([k for k in repo.asset_graph.asset_check_keys if k.asset_key in candle_keys]) == 432 * len(CHECKS)
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {"gap_detection_job", "retention_job", "snapshots_job"} <= jobs and "gap_fill_job" not in jobs
    assert any(j.startswith("candles_daily_from_") for j in jobs) and any(j.startswith("candles_weekly_from_") for j in jobs)
    assert any(j.startswith("candles_daily_ny_from_") for j in jobs) and any(j.startswith("candles_weekly_ny_from_") for j in jobs)
    schedules = {s.name: s.job_name for s in repo.schedule_defs}
    assert schedules["gap_detection"] == "gap_detection_job" and "gap_fill" not in schedules
    assert {"priority_refresh_snapshots", "weekly_retention"} <= set(schedules)
    assert {s.name for s in repo.sensor_defs} == {"secondary_queue", "sync_status_on_failure", "gap_fill_sensor"}
    # the gap-fill sensor targets the very candle jobs the code location registers
    gap_fill = repo.get_sensor_def("gap_fill_sensor")
    assert {j.name for j in gap_fill.jobs} == {j for j in jobs if j.startswith("candles_")}
    # derived timeframes depend on the base timeframe: lineage m1 -> h1
    assert AssetKey(["candles", "eurusd", "m1"]) in repo.asset_graph.get(AssetKey(["candles", "eurusd", "h1"])).parent_keys


def test_w1_is_resampled_from_the_stored_d1_where_provider_days_are_utc_days(monkeypatch):
    """Lineage as the UI draws it: m1 -> d1 -> w1 for the forex and metal pairs (D1 derived, the
    bootstrap fills its old days from day aggregates), d1 -> w1 for the indices (D1 fetched), with
    the weekly-to-daily partition mapping Dagster derives from the two definitions; m1 -> w1 for
    crypto, whose provider days are not UTC days; the New York week is the base's either way."""
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    catalog = load_catalog()
    graph = build_definitions(catalog).get_repository_def().asset_graph
    assert catalog.get("GBPUSD").fetch == () and catalog.get("EURUSD").fetch == ()
    parents = {(sym, tf): graph.get(candle_key(sym, tf)).parent_keys
               for sym in ("GBPUSD", "EURUSD", "SPX500", "BTCUSD")
               for tf in (Timeframe.W1, Timeframe.W1_NY, Timeframe.D1) if tf in catalog.get(sym).timeframes}
    for sym in ("GBPUSD", "EURUSD"):
        assert parents[(sym, Timeframe.W1)] == {candle_key(sym, Timeframe.D1)}
        assert parents[(sym, Timeframe.D1)] == {candle_key(sym, Timeframe.M1)}
        assert parents[(sym, Timeframe.W1_NY)] == {candle_key(sym, Timeframe.M1)}
    assert parents[("SPX500", Timeframe.W1)] == {candle_key("SPX500", Timeframe.D1)}
    assert parents[("SPX500", Timeframe.D1)] == set()  # fetched
    assert parents[("BTCUSD", Timeframe.W1)] == {candle_key("BTCUSD", Timeframe.M1)}
    # only a D1 whose provider days are its days can be filled from the API: it takes the client
    d1 = {sym: graph.get(candle_key(sym, Timeframe.D1)).assets_def for sym in ("GBPUSD", "BTCUSD")}
    assert "massive" in d1["GBPUSD"].required_resource_keys
    assert "massive" not in d1["BTCUSD"].required_resource_keys
    w1 = graph.get(candle_key("GBPUSD", Timeframe.W1))
    assert w1.assets_def.metadata_by_key[w1.key]["derived_from"] == "D1"
    # one weekly partition reads the seven daily partitions of its week
    mapping = graph.get_partition_mapping(w1.key, candle_key("GBPUSD", Timeframe.D1))
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        w1.partitions_def.subset_with_partition_keys(["2026-10-05"]), w1.partitions_def,
        graph.get(candle_key("GBPUSD", Timeframe.D1)).partitions_def,
    ).partitions_subset
    assert sorted(upstream.get_partition_keys()) == [f"2026-10-{d:02d}" for d in range(5, 12)]


def test_callers_inject_resources_and_settings_into_the_same_composition(monkeypatch):
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    marker = object()
    defs = build_definitions(load_catalog(), resources={"massive": marker, "candle_store": marker,
                                                        "redis_publisher": marker},
                             settings=OperationsSettings(running_by_default=False))
    repo = defs.get_repository_def()
    assert defs.resources["massive"] is marker
    assert all(s.default_status.value == "STOPPED" for s in repo.schedule_defs)


def test_the_candle_io_manager_reads_the_store_the_candle_assets_write(monkeypatch, tmp_path):
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)
    marker = object()
    store = CandleStoreResource(database_url=f"sqlite:///{tmp_path}/candles.sqlite")
    # a caller injecting its own store (the simulation does) gets the manager over that store
    defs = build_definitions(load_catalog(), resources={"massive": marker, "candle_store": store,
                                                        "redis_publisher": marker})
    manager = defs.resources[CANDLE_IO_MANAGER_KEY]
    assert isinstance(manager, CandleIOManager) and manager.database_url == store.database_url
    graph = defs.get_repository_def().asset_graph
    for tf in (Timeframe.M1, Timeframe.H1, Timeframe.W1):  # fetched and derived
        key = candle_key("EURUSD", tf)
        assert graph.get(key).assets_def.get_io_manager_key_for_asset_key(key) == CANDLE_IO_MANAGER_KEY
