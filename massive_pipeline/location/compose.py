"""The composition root of the code location: the one place its parts are put together.

`massive_pipeline.definitions`, the module Dagster loads, calls `build_definitions` once at import;
the CLI, the tests and the simulation call it too, so there is no second copy of the composition to
drift. The CLI imports it from here, not from that module, so a command composes the location once. Each concern contributes one `Definitions` (its assets,
jobs, and the schedules and sensors next to the jobs they target); the root binds the resources.
The catalog comes from `MASSIVE_CATALOG` or the packaged `catalog.yaml`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

from dagster import BetaWarning, Definitions, ExecutorDefinition, PreviewWarning

from massive_pipeline.broker.definitions import build_broker_definitions
from massive_pipeline.candles.assets import build_candle_assets
from massive_pipeline.candles.jobs import build_candle_jobs, in_run_process_config, lane_executor
from massive_pipeline.core.catalog import Catalog, Provider, load_catalog
from massive_pipeline.features.definitions import build_features_definitions
from massive_pipeline.operations import (
    OperationsSettings,
    RedisPublisherResource,
    build_operations_definitions,
)
from massive_pipeline.quality.definitions import build_quality_definitions
from massive_pipeline.resources.api_key import api_key_variable
from massive_pipeline.resources.binance import binance_resource_from_env
from massive_pipeline.resources.candle_io_manager import CANDLE_IO_MANAGER_KEY, CandleIOManager
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env
from massive_pipeline.store.engine import resolve_database_url


def default_resources() -> dict[str, object]:
    """The resources as the deployed code location configures them, from the environment."""
    store = CandleStoreResource()
    return {
        "massive": massive_resource_from_env(),
        "binance": binance_resource_from_env(),
        "candle_store": store,
        CANDLE_IO_MANAGER_KEY: CandleIOManager(database_url=store.database_url),
        "redis_publisher": RedisPublisherResource(),
    }


def _with_candle_io_manager(resources: Mapping[str, object]) -> dict[str, object]:
    """The resources plus the candle IO manager over the bound candle store, unless the caller bound
    one: callers that inject their own store (the simulation, tests) read it back through the same URL."""
    out = dict(resources)
    if CANDLE_IO_MANAGER_KEY not in out:
        store = out.get("candle_store")
        url = store.database_url if isinstance(store, CandleStoreResource) else None
        out[CANDLE_IO_MANAGER_KEY] = CandleIOManager(database_url=url)
    return out


def _with_binance(resources: Mapping[str, object], catalog: Catalog) -> dict[str, object]:
    """The resources plus the `binance` resource from the environment when the catalog has Binance
    entries and the caller bound none: it needs no key, so callers that bind only Massive (tests,
    the simulation) still get a code location whose Binance assets can run."""
    out = dict(resources)
    if "binance" not in out and any(spec.provider is Provider.BINANCE for spec in catalog):
        out["binance"] = binance_resource_from_env()
    return out


def _massive(resource: object) -> MassiveResource | None:
    """The bound API resource, for the queue sensor that opens it itself (operations/sensors.py)."""
    return resource if isinstance(resource, MassiveResource) else None


def build_definitions(
    catalog: Catalog | None = None,
    *,
    resources: Mapping[str, object] | None = None,
    settings: OperationsSettings | None = None,
    executor: ExecutorDefinition | None = None,
) -> Definitions:
    """The whole code location; each concern contributes its own `Definitions`, merged here.

    `executor` defaults to the lane executor (multiprocess, one critical step per run); the
    simulation runs its steps in the run's process instead, to keep pace with its clock.

    Single-run backfill policies and partitioned asset checks are marked beta/preview in Dagster
    1.13; the pipeline relies on them deliberately (README), so their warnings are silenced while
    the definitions are built, and only then (no process-wide filter set at import).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        return _compose(catalog or load_catalog(), resources, settings or OperationsSettings.from_env(),
                        executor or lane_executor())


def _compose(catalog: Catalog, resources: Mapping[str, object] | None, settings: OperationsSettings,
             executor: ExecutorDefinition) -> Definitions:
    if resources is None:
        resolve_database_url()  # a malformed MASSIVE_DATABASE_URL is refused when the code location loads
        resources = default_resources()
    resources = _with_binance(_with_candle_io_manager(resources), catalog)
    # The schedules and sensors check the key the bound resource will really read (an EnvVar's
    # variable), not a guess: a literal key (the simulation's) is never missing.
    # The small latency-bound runs keep their steps in the run's process where the executor allows.
    settings = dataclasses.replace(settings, api_key_env=api_key_variable(resources.get("massive")),
                                   in_run_process_config=in_run_process_config(executor))
    parts = (
        Definitions(assets=build_candle_assets(catalog), jobs=build_candle_jobs(catalog), resources=dict(resources),
                    executor=executor),
        build_operations_definitions(catalog, settings, _massive(resources.get("massive"))),
        build_quality_definitions(catalog, settings),
        build_features_definitions(catalog),
        build_broker_definitions(catalog, settings),
    )
    return Definitions.merge(*parts)
