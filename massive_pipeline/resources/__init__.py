"""Dagster resources: the doors from assets, checks, sensors and schedules to the API and the store."""

from massive_pipeline.resources.binance import BinanceResource, binance_resource_from_env
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env

__all__ = ["BinanceResource", "CandleStoreResource", "binance_resource_from_env", "MassiveResource", "massive_resource_from_env"]
