"""Asset jobs that run candle assets in groups sharing one partitions definition.

Dagster runs a partition range only over assets with the same partitions definition, so symbols
whose history starts on the same day share a daily job and a weekly job. The CLI, schedules and
sensors launch these jobs with an asset selection; the UI can backfill any asset directly.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from dagster import AssetKey, AssetSelection, define_asset_job

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import UnresolvedAssetJobDefinition


def job_name_for(spec: SymbolSpec, timeframe: Timeframe) -> str:
    kind = "weekly" if timeframe is Timeframe.W1 else "daily"
    return f"candles_{kind}_from_{spec.start:%Y_%m_%d}"


@functools.cache
def build_candle_jobs(catalog: Catalog) -> list[UnresolvedAssetJobDefinition]:
    """One job per partitions definition; cached, so sensors that target these jobs get the very
    objects the code location registers (Dagster rejects two different jobs with one name)."""
    keys: dict[str, list[AssetKey]] = defaultdict(list)
    for spec in catalog:
        for tf in Timeframe:
            if tf.minutes < spec.base_timeframe.minutes:
                continue
            name = job_name_for(spec, tf)
            keys[name].append(candle_key(spec.symbol, tf))
    return [
        define_asset_job(
            name,
            selection=AssetSelection.assets(*ks),
            description="Candle assets sharing this partitions definition; launch with an asset selection.",
        )
        for name, ks in sorted(keys.items())
    ]
