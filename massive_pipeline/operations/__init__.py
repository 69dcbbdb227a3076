"""Unattended operation: what keeps the candle store fresh once the Dagster daemon runs.

A 5-minute priority refresh of the critical symbols, a budgeted queue for the others, snapshots
with Redis events, the daily re-sync, gap detection and filling, weekly retention, and the status
report that shows all of it.
"""

from massive_pipeline.operations.definitions import build_operations_definitions
from massive_pipeline.operations.publisher import RedisPublisherResource
from massive_pipeline.operations.settings import OperationsSettings

__all__ = ["OperationsSettings", "RedisPublisherResource", "build_operations_definitions"]
