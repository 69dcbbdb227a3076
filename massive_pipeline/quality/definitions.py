"""The quality part of the code location: the gap jobs and the `data_quality_report` asset.

The asset checks themselves are `check_specs` of the candle assets (`checks.py`), attached where
the assets are built, because they are evaluated inside the candle steps.
"""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.catalog import Catalog
from massive_pipeline.quality.gap_detection import build_gap_detection_job
from massive_pipeline.quality.gap_fill import build_gap_fill_job
from massive_pipeline.quality.report_asset import build_quality_report_asset


def build_quality_definitions(catalog: Catalog) -> Definitions:
    """`gap_detection_job`, `gap_fill_job` and `data_quality_report`; resources are bound by the caller."""
    return Definitions(
        assets=[build_quality_report_asset(catalog)],
        jobs=[build_gap_detection_job(catalog), build_gap_fill_job(catalog)],
    )
