"""The quality part of the code location: the gap jobs with their daily schedules, and the
`data_quality_report` asset.

The asset checks themselves are `check_specs` of the candle assets (`checks.py`), attached where
the assets are built, because they are evaluated inside the candle steps.
"""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.operations.schedules import gap_schedules
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.quality.gap_detection import build_gap_detection_job
from massive_pipeline.quality.gap_fill import build_gap_fill_job
from massive_pipeline.quality.report_asset import build_quality_report_asset


def build_quality_definitions(catalog: Catalog, settings: OperationsSettings | None = None) -> Definitions:
    """`gap_detection_job` and `gap_fill_job` with their 05:00 and 06:00 schedules, and
    `data_quality_report`; resources are bound by the composition root."""
    return Definitions(
        assets=[build_quality_report_asset(catalog)],
        jobs=[build_gap_detection_job(catalog), build_gap_fill_job(catalog)],
        schedules=gap_schedules(settings or OperationsSettings.from_env()),
    )
