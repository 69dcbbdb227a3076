"""The Dagster code location: candle assets for every catalog symbol × timeframe, and resources.

`dagster dev` and `dagster definitions validate` load this module (`[tool.dagster]` in
pyproject.toml). The catalog comes from `MASSIVE_CATALOG` or the packaged `catalog.yaml`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from dagster import BetaWarning, Definitions

from massive_pipeline.assets.candles import build_candle_assets
from massive_pipeline.catalog import Catalog, load_catalog
from massive_pipeline.jobs import build_candle_jobs
from massive_pipeline.resources import massive_resource_from_env
from massive_pipeline.store_resource import CandleStoreResource

# Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster
# 1.13; this pipeline relies on them deliberately (README), so the warnings are noise here.
warnings.filterwarnings("ignore", category=BetaWarning)

# Builders of the other concerns' definitions (asset checks, schedules, sensors, …); each takes
# the catalog and returns a `Definitions` without resources (the resources are bound above).
EXTRA_DEFINITIONS: list[Callable[[Catalog], Definitions]] = []


def build_definitions(catalog: Catalog | None = None) -> Definitions:
    """The whole code location; each concern contributes its own `Definitions`, merged here."""
    catalog = catalog or load_catalog()
    candles = Definitions(
        assets=build_candle_assets(catalog),
        jobs=build_candle_jobs(catalog),
        resources={
            "massive": massive_resource_from_env(),
            "candle_store": CandleStoreResource(),
        },
    )
    return Definitions.merge(candles, *(build(catalog) for build in EXTRA_DEFINITIONS))


defs = build_definitions()
