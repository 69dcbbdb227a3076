"""The sensor: an export dropped into a broker's folder → a run request → the comparison asset
materialized on a real Dagster instance, with the offset, the differences and the plot in its metadata."""

from __future__ import annotations

import base64
import io
import os
import re

import matplotlib.image
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context, materialize

from massive_pipeline.broker.assets import broker_key
from massive_pipeline.broker.config import parse_brokers
from massive_pipeline.broker.definitions import build_broker_definitions
from massive_pipeline.broker.offset import OffsetRule
from massive_pipeline.broker.sensor import BROKER_SENSOR
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline_tests.broker.broker_files import broker_bars, mt5_text, write_export


def test_a_dropped_export_is_compared_once_and_shown_with_its_metadata(xau_store, tmp_path):
    store, stored = xau_store
    catalog = load_catalog()
    folder = tmp_path / "exports"
    folder.mkdir()
    brokers = parse_brokers(f"brokers:\n  - {{name: demo, folder: '{folder}', symbols: [XAUUSD]}}\n", catalog)
    resources = {"candle_store": CandleStoreResource(database_url=str(store.engine.url))}
    defs = Definitions.merge(
        build_broker_definitions(catalog, OperationsSettings.from_env(), brokers),
        Definitions(resources=resources),
    )
    sensor = defs.resolve_sensor_def(BROKER_SENSOR)
    key = broker_key("demo", "XAUUSD")
    asset = next(a for a in defs.assets if key in a.keys)  # type: ignore[union-attr]
    # lineage: the comparison depends on the symbol's candle assets of the broker's timeframes
    assert asset.asset_deps[key] == {
        AssetKey(["candles", "xauusd", "m15"]),
        AssetKey(["candles", "xauusd", "h1"]),
    }

    with DagsterInstance.ephemeral() as instance:
        empty = sensor(build_sensor_context(instance=instance, definitions=defs))
        assert not empty.run_requests and "no new export" in empty.skip_reason.skip_message

        (folder / "notes.txt").write_text("not an export")
        path = write_export(
            folder,
            "XAUUSD_H1_202502150000_202511192300.csv",
            mt5_text(broker_bars(stored[Timeframe.H1], OffsetRule.new_york_close(), 0.35), 2),
        )
        tick = sensor(build_sensor_context(instance=instance, cursor=empty.cursor, definitions=defs))
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        assert request.asset_selection == [key] and request.tags["massive/purpose"] == "broker_comparison"
        assert request.tags["dagster/max_runtime"] == "900"  # a hung comparison is failed by run monitoring

        # the run the daemon would launch: the requested asset with the request's config
        result = materialize(
            [asset],
            instance=instance,
            run_config=request.run_config,
            tags=request.tags,
            resources=resources,
        )
        assert result.success
        meta = result.asset_materializations_for_node(key.to_python_identifier())[0].metadata
        assert meta["offset_rule"].value == "new_york_close" and meta["time_offset_minutes"].value == 180
        assert abs(meta["close_mean_diff"].value - 0.35) < 0.0001
        assert meta["recommended_offset"].value == meta["close_mean_diff"].value
        assert meta["bars_compared"].value == len(stored[Timeframe.H1])
        plot = meta["diff_plot"].value
        assert "broker − store close" in plot and "| 2025-11-19 |" in plot
        # the plot is a real PNG of the per-bar difference (8 × 2.6 inches at 80 dpi)
        png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", plot).group(1))
        assert matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2] == (208, 640)
        assert instance.get_latest_materialization_event(key) is not None
        assert len(store.broker_comparisons("demo")) == 1

        # the same file again: nothing; touched but identical: nothing; changed: one more request
        again = sensor(build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs))
        assert not again.run_requests
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        touched = sensor(build_sensor_context(instance=instance, cursor=again.cursor, definitions=defs))
        assert not touched.run_requests
        path.write_text(mt5_text(broker_bars(stored[Timeframe.H1], OffsetRule.new_york_close(), 0.30), 2))
        changed = sensor(build_sensor_context(instance=instance, cursor=touched.cursor, definitions=defs))
        assert [r.asset_selection for r in changed.run_requests] == [[key]]
        assert changed.run_requests[0].run_key != request.run_key


def test_without_a_brokers_file_there_is_nothing_to_add(monkeypatch):
    monkeypatch.delenv("MASSIVE_BROKERS", raising=False)
    defs = build_broker_definitions(load_catalog(), OperationsSettings.from_env())
    assert not list(defs.assets or []) and not list(defs.sensors or [])
