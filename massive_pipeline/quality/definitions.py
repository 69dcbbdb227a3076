"""The quality part of the code location: gap detection with its daily schedule, the gap-fill
sensor, and the `data_quality_report` asset.

The asset checks themselves are `check_specs` of the candle assets (`checks.py`), attached where
the assets are built, because they are evaluated inside the candle steps. Gap filling is not a job:
`gap_fill_sensor` requests runs of the candle jobs (the objects `jobs.build_candle_jobs` caches and
the composition root registers), so fills go through the run queue like every other run.
"""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.operations.schedules import gap_schedules
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.quality.gap_detection import build_gap_detection_job
from massive_pipeline.quality.gap_fill_sensor import build_gap_fill_sensor
from massive_pipeline.quality.report_asset import build_quality_report_asset


def build_quality_definitions(catalog: Catalog, settings: OperationsSettings | None = None) -> Definitions:
    """`gap_detection_job` with its 05:00 schedule, `gap_fill_sensor` (06:00 round, judging every
    tick) and `data_quality_report`; resources are bound by the composition root."""
    settings = settings or OperationsSettings.from_env()
    return Definitions(
        assets=[build_quality_report_asset(catalog)],
        jobs=[build_gap_detection_job(catalog)],
        schedules=gap_schedules(settings),
        sensors=[build_gap_fill_sensor(catalog, settings)],
    )
