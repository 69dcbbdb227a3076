"""Baseline: the store's tables as released before the schema was versioned.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

Frozen: these definitions must not follow later changes of `schema.py` (later revisions change
the tables). Stores that existed before versioning are recognised by `migrate.py` and upgraded
from here; tables they already hold are left alone (`checkfirst`), so only missing ones are made.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DDL-only stand-ins for the store's types: epoch milliseconds on SQLite, timestamptz elsewhere.
_TS = sa.TIMESTAMP(timezone=True).with_variant(sa.BigInteger(), "sqlite")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIMEFRAMES = "timeframe IN ('M1', 'M5', 'M15', 'M30', 'H1', 'H4', 'D1', 'W1')"


def baseline_metadata() -> sa.MetaData:
    """The six tables of revision 0001, exactly as `metadata.create_all` of that code made them."""
    md = sa.MetaData()
    sa.Table(
        "candles", md,
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("timeframe", sa.String(4), primary_key=True),
        sa.Column("ts", _TS, primary_key=True),
        *(sa.Column(c, sa.Double(), nullable=False) for c in ("open", "high", "low", "close", "volume")),
        sa.Column("vwap", sa.Double(), nullable=True),
        sa.Column("trades", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("ingested_at", _TS, nullable=False),
        sa.CheckConstraint(_TIMEFRAMES, name="ck_candles_timeframe"),
        sqlite_with_rowid=False,
    )
    sa.Table(
        "sync_status", md,
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("timeframe", sa.String(4), primary_key=True),
        sa.Column("last_sync_at", _TS, nullable=True),
        sa.Column("last_bar_ts", _TS, nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False, server_default="never"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('ok', 'error', 'running', 'never')", name="ck_sync_status_status"),
    )
    sa.Table(
        "rejected_candles", md,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("timeframe", sa.String(4), nullable=False),
        sa.Column("ts", _TS, nullable=True),
        *(sa.Column(c, sa.Double(), nullable=True) for c in ("open", "high", "low", "close", "volume", "vwap")),
        sa.Column("trades", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("rejected_at", _TS, nullable=False),
        sa.Index("ix_rejected_candles_series", "symbol", "timeframe", "rejected_at"),
    )
    sa.Table(
        "data_gaps", md,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("timeframe", sa.String(4), nullable=False),
        sa.Column("gap_start", _TS, nullable=False),
        sa.Column("gap_end", _TS, nullable=False),
        sa.Column("candles_missing", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="detected"),
        sa.Column("detected_at", _TS, nullable=False),
        sa.Column("filled_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.UniqueConstraint("symbol", "timeframe", "gap_start", name="uq_data_gaps_series_start"),
        sa.CheckConstraint(
            "status IN ('detected', 'filling', 'filled', 'unfillable')", name="ck_data_gaps_status"
        ),
    )
    sa.Table(
        "snapshots", md,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        *(
            sa.Column(c, sa.Double(), nullable=True)
            for c in ("bid", "ask", "spread", "last", "day_open", "day_high", "day_low", "day_close",
                      "day_volume")
        ),
        sa.Column("quote_ts", _TS, nullable=True),
        sa.Column("fetched_at", _TS, nullable=False),
        sa.Index("ix_snapshots_symbol_fetched", "symbol", "fetched_at"),
    )
    return md


def upgrade() -> None:
    baseline_metadata().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    # Going below the baseline would mean dropping every stored candle; no command should do that.
    raise RuntimeError("the candle store's baseline revision 0001 is not downgraded (it would drop all data)")
