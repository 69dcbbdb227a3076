"""The operations part of the code location: schedules, sensors, the snapshots asset, retention.

Merged by the composition root (`massive_pipeline.location.build_definitions`); binds no resources (the code
location binds `massive`, `candle_store` and `redis_publisher` once for everything).
"""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.operations.refresh import build_priority_schedules
from massive_pipeline.operations.resync import build_resync_schedules
from massive_pipeline.operations.retention import build_retention_job, build_retention_schedule
from massive_pipeline.operations.sensors import build_secondary_queue_sensor, build_sync_failure_sensor
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.operations.snapshots import (
    build_snapshots_asset,
    build_snapshots_job,
    build_snapshots_schedule,
)
from massive_pipeline.operations.weekly_bars import build_weekly_refresh_schedules
from massive_pipeline.resources.massive import MassiveResource


def build_operations_definitions(
    catalog: Catalog, settings: OperationsSettings | None = None, massive: MassiveResource | None = None
) -> Definitions:
    """`massive`: the API resource the code location binds, which the queue sensor opens itself."""
    settings = settings or OperationsSettings.from_env()
    schedules = [
        *build_priority_schedules(catalog, settings),
        *build_weekly_refresh_schedules(catalog, settings),
        *build_resync_schedules(catalog, settings),
        build_retention_schedule(settings),
    ]
    jobs = [build_retention_job(catalog, settings)]
    assets = []
    if catalog.critical():
        assets.append(build_snapshots_asset(catalog))
        jobs.append(build_snapshots_job())
        schedules.append(build_snapshots_schedule(settings))
    queue = build_secondary_queue_sensor(catalog, settings, massive)
    sensors = [s for s in (queue, build_sync_failure_sensor(settings)) if s is not None]
    return Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors)
