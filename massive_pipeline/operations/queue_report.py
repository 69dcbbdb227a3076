"""The secondary queue as the sensor last evaluated it, kept in the candle store's database.

The sensor's cursor is the queue's state; this table is its public face: `massive-pipeline
status` reads it, and so can any SQL client or dashboard, without access to the Dagster instance.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Column, Double, Integer, MetaData, String, Table, Text, delete, insert, select

from massive_pipeline.operations.queue import QueueEntry
from massive_pipeline.store import CandleStore
from massive_pipeline.store.engine import SQLITE_BEGIN_OPTION
from massive_pipeline.store.schema import SYMBOL_LENGTH, UtcTimestamp

metadata = MetaData()

queue_report = Table(
    "operations_queue",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("position", Integer(), nullable=True),
    Column("tier", String(16), nullable=False),
    Column("effective_rank", Integer(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("last_bar_ts", UtcTimestamp(), nullable=True),
    Column("lag_seconds", Double(), nullable=True),
    Column("limit_seconds", Double(), nullable=False),
    Column("failures", Integer(), nullable=False),
    Column("last_error", Text(), nullable=True),
    Column("evaluated_at", UtcTimestamp(), nullable=False),
)

COLUMNS: tuple[str, ...] = tuple(c.name for c in queue_report.columns)


def ensure_table(store: CandleStore) -> None:
    """Create the report table if missing. On SQLite inside a `BEGIN IMMEDIATE` transaction: a
    deferred one reads the schema first and then cannot take the write lock while a run is writing
    (SQLite answers "database is locked" at once, without the busy timeout, as its snapshot is stale)."""
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with conn.begin():
            metadata.create_all(conn, checkfirst=True)


def write_queue_report(store: CandleStore, entries: Sequence[QueueEntry], evaluated_at: pd.Timestamp) -> None:
    """Replace the report with this tick's queue, in one transaction."""
    ensure_table(store)
    rows = [
        {
            "symbol": e.symbol, "position": e.position, "tier": e.spec.priority.value,
            "effective_rank": e.effective_rank, "state": e.state, "reason": e.reason,
            "timeframe": e.freshness.timeframe.value, "last_bar_ts": e.freshness.last_bar,
            "lag_seconds": None if e.freshness.lag is None else e.freshness.lag.total_seconds(),
            "limit_seconds": e.freshness.limit.total_seconds(), "failures": e.record.failures,
            "last_error": e.record.last_error, "evaluated_at": evaluated_at,
        }
        for e in entries
    ]
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":  # take the write lock at BEGIN, as the store's own writes do
            conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with conn.begin():
            conn.execute(delete(queue_report))
            if rows:
                conn.execute(insert(queue_report), rows)


def read_queue_report(store: CandleStore) -> pd.DataFrame:
    """The last evaluated queue in queue order (empty when the sensor has not run yet)."""
    ensure_table(store)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(queue_report).order_by(queue_report.c.effective_rank, queue_report.c.position.is_(None),
                                          queue_report.c.position, queue_report.c.symbol)
        ).all()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("last_bar_ts", "evaluated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
