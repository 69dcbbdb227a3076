"""Asset jobs that run candle assets in groups sharing one partitions definition.

Dagster runs a partition range only over assets with the same partitions definition, so symbols
whose history starts on the same day share a daily job and a weekly job, and, for the New York
close convention, a `daily_ny` job (D1_NY) and a `weekly_ny` job (W1_NY). The CLI, schedules and
sensors launch these jobs with an asset selection; the UI can backfill any asset directly.

`lane_executor` is the code location's executor (every job, the UI's asset runs and backfills
included). By default it is Dagster's multiprocess executor with one run-scoped limit, at most one
step of the critical lane (op tag `massive/lane: critical`) in flight per run. A single-run backfill
of every symbol then holds one slot of pool `massive_api_critical`, not one per critical symbol,
which is what lets the instance size that pool for the worst mix of runs (README "Lanes").
`MASSIVE_EXECUTOR=celery` selects dagster-celery's executor instead (`celery_executor.py`, which
says what carries the lanes there).

The lane executor also runs a run's steps in the run's own process when the run's config asks
(`execution: {config: {steps_in_run_process: true}}`, `IN_RUN_PROCESS_CONFIG`). The schedules and
sensors ask it for their small latency-bound runs (a refresh of a day or two, the snapshots): each
step there is about a second of work, while a step subprocess must first import the code location
(4-5 s on an idle 2-core machine, over 10 s under load), so a one-day refresh of eight timeframes
took 27 s as subprocesses and 5 s in the run's process. Pools still apply step by step (Dagster's
in-process executor claims each op's pool slot from the instance), and one step at a time keeps
the lane limit. Ranged backfills, fills and re-syncs keep the subprocesses, whose parallel derived
steps pay off on long ranges.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    ExecutorDefinition,
    Field,
    define_asset_job,
    multi_or_in_process_executor,
)

from massive_pipeline.candles.assets import CRITICAL_LANE, LANE_TAG, candle_key
from massive_pipeline.candles.celery_executor import ExecutorKind, celery_lanes_executor, executor_kind
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import UnresolvedAssetJobDefinition

CRITICAL_STEPS_PER_RUN = 1
LANES_EXECUTOR_NAME = "multiprocess_lanes"
IN_RUN_PROCESS_FIELD = "steps_in_run_process"
# the run config of a run whose steps execute in the run's process (lane executor only)
IN_RUN_PROCESS_CONFIG: Mapping[str, Any] = {"execution": {"config": {IN_RUN_PROCESS_FIELD: True}}}


def lane_executor() -> ExecutorDefinition:
    """The executor `MASSIVE_EXECUTOR` selects: multiprocess with the lane limit (default) or celery."""
    if executor_kind() is ExecutorKind.CELERY:
        return celery_lanes_executor()
    return multiprocess_lane_executor()


def _lane_executor_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster's multi-or-in-process executor config for the lane executor's one switch."""
    if config[IN_RUN_PROCESS_FIELD]:
        return {"in_process": {}}
    return {"multiprocess": {"tag_concurrency_limits": [
        {"key": LANE_TAG, "value": CRITICAL_LANE, "limit": CRITICAL_STEPS_PER_RUN}]}}


def multiprocess_lane_executor() -> ExecutorDefinition:
    """Multiprocess, at most CRITICAL_STEPS_PER_RUN critical-lane step in flight in any one run;
    or, when a run's config sets `steps_in_run_process`, every step in the run's own process."""
    return multi_or_in_process_executor.configured(
        _lane_executor_config,
        name=LANES_EXECUTOR_NAME,
        config_schema={IN_RUN_PROCESS_FIELD: Field(
            bool, default_value=False,
            description="Run the steps one after another in the run's process instead of one subprocess "
                        "each: for small runs, whose steps take less time than a subprocess takes to start.")},
    )


def in_run_process_config(executor: ExecutorDefinition) -> Mapping[str, Any] | None:
    """The run config that keeps a run's steps in its process, when `executor` takes it (the lane
    executor does; dagster-celery's and a deployment's own executor do not, and get None)."""
    return IN_RUN_PROCESS_CONFIG if executor.name == LANES_EXECUTOR_NAME else None


def job_name_for(spec: SymbolSpec, timeframe: Timeframe) -> str:
    kind = "weekly" if timeframe.is_weekly else "daily"
    if timeframe.is_new_york:
        kind += "_ny"
    return f"candles_{kind}_from_{spec.start:%Y_%m_%d}"


@functools.cache
def build_candle_jobs(catalog: Catalog) -> list[UnresolvedAssetJobDefinition]:
    """One job per partitions definition; cached, so sensors that target these jobs get the very
    objects the code location registers (Dagster rejects two different jobs with one name)."""
    keys: dict[str, list[AssetKey]] = defaultdict(list)
    for spec in catalog:
        for tf in spec.timeframes:
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
