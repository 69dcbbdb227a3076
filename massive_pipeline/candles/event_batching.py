"""Dagster's batched event writes for ranged candle runs.

A ranged run records one materialization per partition (730 for two years of a daily asset), each
its own write unless `DAGSTER_EVENT_BATCH_SIZE` is set: then Dagster hands a step's partition
materializations to the event log storage as batches, which dagster-postgres writes in one INSERT
per batch (SQLite's storage still writes them one by one). Dagster reads the variable at every
event, so it can be scoped to a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_EVENT_BATCH_SIZE = 1000


@contextmanager
def event_batching(size: int = DEFAULT_EVENT_BATCH_SIZE) -> Iterator[int]:
    """Batched event writes while the block runs, unless the environment already chose a size
    (an operator's `DAGSTER_EVENT_BATCH_SIZE`, `0` included, is kept); yields the size in effect."""
    chosen = os.environ.get(EVENT_BATCH_SIZE_ENV)
    if chosen is not None:
        yield int(chosen or 0)
        return
    os.environ[EVENT_BATCH_SIZE_ENV] = str(size)
    try:
        yield size
    finally:
        os.environ.pop(EVENT_BATCH_SIZE_ENV, None)
