"""The brokers part of the code location: one comparison asset per declared broker × symbol and
the sensor that notices new exports. Without a brokers file (`MASSIVE_BROKERS` unset) it is empty,
so a deployment that compares no broker has nothing more in its UI."""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.broker.assets import build_broker_assets
from massive_pipeline.broker.config import BrokerSpec, load_brokers
from massive_pipeline.broker.sensor import build_broker_sensor
from massive_pipeline.core.catalog import Catalog
from massive_pipeline.operations.settings import OperationsSettings


def build_broker_definitions(
    catalog: Catalog, settings: OperationsSettings, brokers: tuple[BrokerSpec, ...] | None = None
) -> Definitions:
    """`brokers` defaults to the file at $MASSIVE_BROKERS (none when unset)."""
    brokers = load_brokers(catalog) if brokers is None else brokers
    if not brokers:
        return Definitions()
    return Definitions(
        assets=build_broker_assets(catalog, brokers),
        sensors=[build_broker_sensor(brokers, settings.sensor_status, settings)],
    )
