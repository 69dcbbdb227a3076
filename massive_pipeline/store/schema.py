"""Tables of the candle store (SQLAlchemy Core), identical in meaning on SQLite and PostgreSQL.

Timestamps use `UtcTimestamp`: `timestamptz` on PostgreSQL, integer epoch milliseconds on
SQLite, where text timestamps would cost parsing on every comparison and an integer sorts
correctly. `candles` is a WITHOUT ROWID table on SQLite so rows are clustered by the primary key
and a window read is one range scan. On PostgreSQL it is partitioned by timeframe and then by UTC
month (revision 0006, `partitions.py`): `create_all` makes the parent and one table per
timeframe, and the write path makes the months.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    true,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.core.timeutil import to_utc
from massive_pipeline.store import partitions
from massive_pipeline.store.epochs import epoch_ms

SYNC_STATUSES: tuple[str, ...] = ("ok", "error", "running", "never")
GAP_STATUSES: tuple[str, ...] = ("detected", "filling", "filled", "unfillable")
SYMBOL_LENGTH = 16
SOURCE_LENGTH = 32


class UtcTimestamp(TypeDecorator[pd.Timestamp]):
    """A UTC instant: `timestamptz` on PostgreSQL, epoch milliseconds (BIGINT) on SQLite."""

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(TIMESTAMP(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        ts = to_utc(value, "timestamp")
        if dialect.name == "sqlite":
            return epoch_ms(ts)
        return ts.floor("us").to_pydatetime()

    def process_result_value(self, value: Any, dialect: Dialect) -> pd.Timestamp | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return pd.Timestamp(int(value), unit="ms", tz="UTC")
        return pd.Timestamp(value).tz_convert("UTC")


def _in(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


_TIMEFRAMES = tuple(tf.value for tf in Timeframe)
# A broker's export holds its own day and week bars (server time), never the New York close series.
_BROKER_TIMEFRAMES = tuple(tf.value for tf in Timeframe if not tf.is_new_york)
# Room for the New York convention's names (D1_NY, W1_NY) and a few more characters (revision 0004).
TIMEFRAME_LENGTH = 8
# SQLite only autoincrements an INTEGER PRIMARY KEY; BIGINT elsewhere.
_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

candles = Table(
    "candles",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("timeframe", String(TIMEFRAME_LENGTH), primary_key=True),
    Column("ts", UtcTimestamp(), primary_key=True),
    Column("open", Double(), nullable=False),
    Column("high", Double(), nullable=False),
    Column("low", Double(), nullable=False),
    Column("close", Double(), nullable=False),
    Column("volume", Double(), nullable=False),
    Column("vwap", Double(), nullable=True),
    Column("trades", BigInteger(), nullable=True),
    Column("source", String(SOURCE_LENGTH), nullable=False),
    Column("ingested_at", UtcTimestamp(), nullable=False),
    # False while the bar's period had not ended when it was stored (today's D1, this week's W1,
    # the current H4): a later refresh that stores it after its end makes it complete.
    Column("complete", Boolean(), nullable=False, server_default=true()),
    _in("timeframe", _TIMEFRAMES, "ck_candles_timeframe"),
    sqlite_with_rowid=False,
    postgresql_partition_by="LIST (timeframe)",
)


@event.listens_for(candles, "after_create")
def _create_timeframe_levels(target: Table, connection: Connection, **_kw: Any) -> None:
    """PostgreSQL: one RANGE-partitioned table per timeframe under `candles` (months come later)."""
    if connection.dialect.name == "postgresql":
        partitions.create_levels(connection, _TIMEFRAMES)


# Stored rows per (timeframe, UTC month, symbol) of `candles` (revision 0007, `month_rows.py`): kept by
# the store's own write, delete and retention paths in the transaction that changes the rows, so
# retention reads what a month holds instead of counting it. Keyed timeframe and month first: a
# retention drop asks for one month of one timeframe, all symbols.
candle_month_rows = Table(
    "candle_month_rows",
    metadata,
    Column("timeframe", String(TIMEFRAME_LENGTH), primary_key=True),
    Column("month", UtcTimestamp(), primary_key=True),
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("rows", BigInteger(), nullable=False),
)


sync_status = Table(
    "sync_status",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("timeframe", String(TIMEFRAME_LENGTH), primary_key=True),
    Column("last_sync_at", UtcTimestamp(), nullable=True),
    Column("last_bar_ts", UtcTimestamp(), nullable=True),
    Column("rows", BigInteger(), nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="never"),
    Column("error", Text(), nullable=True),
    Column("updated_at", UtcTimestamp(), nullable=False),
    _in("status", SYNC_STATUSES, "ck_sync_status_status"),
)

rejected_candles = Table(
    "rejected_candles",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL_LENGTH), nullable=False),
    Column("timeframe", String(TIMEFRAME_LENGTH), nullable=False),
    # Nullable: a row may be rejected precisely because a field is missing.
    Column("ts", UtcTimestamp(), nullable=True),
    Column("open", Double(), nullable=True),
    Column("high", Double(), nullable=True),
    Column("low", Double(), nullable=True),
    Column("close", Double(), nullable=True),
    Column("volume", Double(), nullable=True),
    Column("vwap", Double(), nullable=True),
    Column("trades", BigInteger(), nullable=True),
    Column("reason", Text(), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("rejected_at", UtcTimestamp(), nullable=False),
    # The same refused bar delivered again (every 5-minute refresh of its day) is counted, not
    # inserted again: `fingerprint` identifies (ts, values, reason) within the series.
    Column("fingerprint", String(64), nullable=True),
    Column("times_seen", Integer(), nullable=False, server_default="1"),
    Column("last_seen_at", UtcTimestamp(), nullable=True),
    Column("last_run_id", String(64), nullable=True),
    Index("ix_rejected_candles_series", "symbol", "timeframe", "rejected_at"),
    Index("uq_rejected_candles_fingerprint", "symbol", "timeframe", "fingerprint", unique=True),
)

candle_revisions = Table(
    "candle_revisions",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL_LENGTH), nullable=False),
    Column("timeframe", String(TIMEFRAME_LENGTH), nullable=False),
    Column("ts", UtcTimestamp(), nullable=False),
    *(Column(f"old_{c}", Double(), nullable=True) for c in ("open", "high", "low", "close", "volume")),
    *(Column(f"new_{c}", Double(), nullable=True) for c in ("open", "high", "low", "close", "volume")),
    # largest |new - old| / |old| over open/high/low/close: how much the provider corrected the bar
    Column("max_rel_change", Double(), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("detected_at", UtcTimestamp(), nullable=False),
    Index("ix_candle_revisions_series", "symbol", "timeframe", "ts"),
    Index("ix_candle_revisions_detected", "detected_at"),
)

data_gaps = Table(
    "data_gaps",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL_LENGTH), nullable=False),
    Column("timeframe", String(TIMEFRAME_LENGTH), nullable=False),
    Column("gap_start", UtcTimestamp(), nullable=False),
    Column("gap_end", UtcTimestamp(), nullable=False),
    Column("candles_missing", Integer(), nullable=False),
    Column("status", String(16), nullable=False, server_default="detected"),
    Column("detected_at", UtcTimestamp(), nullable=False),
    Column("filled_at", UtcTimestamp(), nullable=True),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    UniqueConstraint("symbol", "timeframe", "gap_start", name="uq_data_gaps_series_start"),
    _in("status", GAP_STATUSES, "ck_data_gaps_status"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("symbol", String(SYMBOL_LENGTH), nullable=False),
    Column("ticker", String(32), nullable=False),
    Column("bid", Double(), nullable=True),
    Column("ask", Double(), nullable=True),
    Column("spread", Double(), nullable=True),
    Column("last", Double(), nullable=True),
    Column("day_open", Double(), nullable=True),
    Column("day_high", Double(), nullable=True),
    Column("day_low", Double(), nullable=True),
    Column("day_close", Double(), nullable=True),
    Column("day_volume", Double(), nullable=True),
    Column("quote_ts", UtcTimestamp(), nullable=True),
    Column("fetched_at", UtcTimestamp(), nullable=False),
    Index("ix_snapshots_symbol_fetched", "symbol", "fetched_at"),
)

CANDLE_VALUE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "trades")

# -- broker comparisons (revision 0003) ----------------------------------------------------------
BROKER_LENGTH = 32
OFFSET_RULES: tuple[str, ...] = ("fixed", "new_york_close")

# One row per bar of a broker's MT4/MT5 export. Rows belong to the file they came from
# (`file_sha256`): importing the same file again replaces exactly its rows.
broker_bars = Table(
    "broker_bars",
    metadata,
    Column("broker", String(BROKER_LENGTH), primary_key=True),
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("timeframe", String(4), primary_key=True),
    Column("file_sha256", String(64), primary_key=True),
    # the broker's stamp as written in the file (server time, no zone), kept as if it were UTC
    Column("server_time", UtcTimestamp(), primary_key=True),
    Column("ts", UtcTimestamp(), nullable=False),
    Column("open", Double(), nullable=False),
    Column("high", Double(), nullable=False),
    Column("low", Double(), nullable=False),
    Column("close", Double(), nullable=False),
    Column("volume", Double(), nullable=False),
    Column("real_volume", Double(), nullable=True),
    Column("spread", Double(), nullable=True),
    Column("file_name", Text(), nullable=False),
    Column("imported_at", UtcTimestamp(), nullable=False),
    _in("timeframe", _BROKER_TIMEFRAMES, "ck_broker_bars_timeframe"),
    Index("ix_broker_bars_series", "broker", "symbol", "timeframe", "ts"),
)

broker_comparisons = Table(
    "broker_comparisons",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("broker", String(BROKER_LENGTH), nullable=False),
    Column("symbol", String(SYMBOL_LENGTH), nullable=False),
    Column("timeframe", String(4), nullable=False),
    Column("period_start", UtcTimestamp(), nullable=True),
    Column("period_end", UtcTimestamp(), nullable=True),
    Column("offset_rule", String(16), nullable=False),
    # broker minus UTC; for new_york_close the US-summer value (180)
    Column("time_offset_minutes", Integer(), nullable=False),
    Column("offset_source", String(16), nullable=False),
    Column("offset_confidence", Double(), nullable=True),
    Column("bars_compared", Integer(), nullable=False),
    Column("mean_diff", Double(), nullable=True),
    Column("std_diff", Double(), nullable=True),
    Column("max_abs_diff", Double(), nullable=True),
    Column("mean_diff_pips", Double(), nullable=True),
    Column("pip_size", Double(), nullable=False),
    Column("threshold_pips", Double(), nullable=False),
    Column("recommended_offset", Double(), nullable=True),
    # open/high/low statistics and the offset candidates' scores, as JSON text
    Column("details", Text(), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("file_name", Text(), nullable=False),
    Column("compared_at", UtcTimestamp(), nullable=False),
    _in("offset_rule", OFFSET_RULES, "ck_broker_comparisons_offset_rule"),
    Index("ix_broker_comparisons_series", "broker", "symbol", "timeframe", "compared_at"),
)

# -- cross-checks of two sources (revision 0005) -------------------------------------------------
PARTITION_LENGTH = 32

# One row per (symbol, other_symbol, timeframe, partition): the latest comparison of the closes of
# two catalog entries over that partition's window, upserted each time the check runs.
provider_comparisons = Table(
    "provider_comparisons",
    metadata,
    Column("symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("other_symbol", String(SYMBOL_LENGTH), primary_key=True),
    Column("timeframe", String(TIMEFRAME_LENGTH), primary_key=True),
    Column("partition", String(PARTITION_LENGTH), primary_key=True),
    Column("bars_compared", Integer(), nullable=False),
    # |close ratio after the basis is removed - 1|, over the common bars
    Column("median_rel_diff", Double(), nullable=True),
    Column("max_rel_diff", Double(), nullable=True),
    Column("bars_over_tolerance", Integer(), nullable=False),
    Column("tolerance", Double(), nullable=False),
    # other / this - 1, from the median log ratio of the closes (USDT vs USD)
    Column("basis", Double(), nullable=True),
    Column("compared_at", UtcTimestamp(), nullable=False),
)
