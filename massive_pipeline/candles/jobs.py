"""Asset jobs that run candle assets in groups sharing one partitions definition.

Dagster runs a partition range only over assets with the same partitions definition, so symbols
whose history starts on the same day share a daily job and a weekly job. The CLI, schedules and
sensors launch these jobs with an asset selection; the UI can backfill any asset directly.

`lane_executor` is the code location's executor (every job, the UI's asset runs and backfills
included): Dagster's multiprocess executor with one run-scoped limit, at most one step of the
critical lane (op tag `massive/lane: critical`) in flight per run. A single-run backfill of every
symbol then holds one slot of pool `massive_api_critical`, not one per critical symbol, which is
what lets the instance size that pool for the worst mix of runs (README "Lanes").
"""

from __future__ import annotations

import functools
from collections import defaultdict

from dagster import AssetKey, AssetSelection, ExecutorDefinition, define_asset_job, multiprocess_executor

from massive_pipeline.candles.assets import CRITICAL_LANE, LANE_TAG, candle_key
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import UnresolvedAssetJobDefinition

CRITICAL_STEPS_PER_RUN = 1


def lane_executor() -> ExecutorDefinition:
    """Multiprocess, at most CRITICAL_STEPS_PER_RUN critical-lane step in flight in any one run."""
    return multiprocess_executor.configured(
        {"tag_concurrency_limits": [{"key": LANE_TAG, "value": CRITICAL_LANE, "limit": CRITICAL_STEPS_PER_RUN}]},
        name="multiprocess_lanes",
    )


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
