"""The Dagster code location: candle assets for every catalog symbol × timeframe, and resources.

`dagster dev` and `dagster definitions validate` load this module (`[tool.dagster]` in
pyproject.toml). The catalog comes from `MASSIVE_CATALOG` or the packaged `catalog.yaml`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from dagster import BetaWarning, Definitions, PreviewWarning

from massive_pipeline.assets.candles import build_candle_assets
from massive_pipeline.catalog import Catalog, load_catalog
from massive_pipeline.jobs import build_candle_jobs
from massive_pipeline.operations import (
    RedisPublisherResource,
    build_operations_definitions,
    link_gap_schedules,
)
from massive_pipeline.quality.definitions import build_quality_definitions
from massive_pipeline.resources import massive_resource_from_env
from massive_pipeline.store.engine import resolve_database_url
from massive_pipeline.store_resource import CandleStoreResource

# Builders of the other concerns' definitions (asset checks, schedules, sensors, …); each takes
# the catalog and returns a `Definitions` without resources (the resources are bound above).
EXTRA_DEFINITIONS: list[Callable[[Catalog], Definitions]] = []
EXTRA_DEFINITIONS.append(build_operations_definitions)
EXTRA_DEFINITIONS.append(build_quality_definitions)


def build_definitions(catalog: Catalog | None = None) -> Definitions:
    """The whole code location; each concern contributes its own `Definitions`, merged here.

    Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster
    1.13; the pipeline relies on them deliberately (README), so their warnings are silenced while
    the definitions are built, and only then (no process-wide filter set at import).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        return _build_definitions(catalog)


def _build_definitions(catalog: Catalog | None) -> Definitions:
    catalog = catalog or load_catalog()
    resolve_database_url()  # a malformed MASSIVE_DATABASE_URL is refused when the code location loads
    candles = Definitions(
        assets=build_candle_assets(catalog),
        jobs=build_candle_jobs(catalog),
        resources={
            "massive": massive_resource_from_env(),
            "candle_store": CandleStoreResource(),
            "redis_publisher": RedisPublisherResource(),
        },
    )
    # the daily gap schedules name the quality jobs, so they are added once everything is merged
    return link_gap_schedules(Definitions.merge(candles, *(build(catalog) for build in EXTRA_DEFINITIONS)))


defs = build_definitions()
