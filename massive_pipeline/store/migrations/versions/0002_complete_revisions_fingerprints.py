"""Bars still forming (`candles.complete`), `candle_revisions`, rejected bars counted by fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Every change is an ADD COLUMN with a constant default, never a table rebuild:
- PostgreSQL (11+) stores the default in the catalog, so `ADD COLUMN complete BOOLEAN DEFAULT
  true NOT NULL` is instant however many candles there are, and takes its lock only briefly.
- SQLite supports ADD COLUMN with a constant default directly; a batch rebuild (what
  `batch_alter_table` does) would copy the table and would make `candles` a rowid table again.
Old rows read `complete = true`, the column's default (the next refresh of a period still
forming rewrites its bar with the right marker) and `times_seen = 1`; old rejects have no
fingerprint (NULLs never collide in the unique index) and were last seen when they were rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.TIMESTAMP(timezone=True).with_variant(sa.BigInteger(), "sqlite")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OHLCV = ("open", "high", "low", "close", "volume")


def upgrade() -> None:
    op.add_column("candles", sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.true()))

    op.add_column("rejected_candles", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.add_column("rejected_candles", sa.Column("times_seen", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("rejected_candles", sa.Column("last_seen_at", _TS, nullable=True))
    op.add_column("rejected_candles", sa.Column("last_run_id", sa.String(64), nullable=True))
    op.execute("UPDATE rejected_candles SET last_seen_at = rejected_at, last_run_id = run_id")
    op.create_index(
        "uq_rejected_candles_fingerprint", "rejected_candles", ["symbol", "timeframe", "fingerprint"], unique=True
    )

    # Code released between the baseline and versioning created this table with create_all on
    # stores it opened, so an unversioned store may have it already (empty, same shape).
    if not sa.inspect(op.get_bind()).has_table("candle_revisions"):
        op.create_table(
            "candle_revisions",
            sa.Column("id", _ID, primary_key=True, autoincrement=True),
            sa.Column("symbol", sa.String(16), nullable=False),
            sa.Column("timeframe", sa.String(4), nullable=False),
            sa.Column("ts", _TS, nullable=False),
            *(sa.Column(f"old_{c}", sa.Double(), nullable=True) for c in _OHLCV),
            *(sa.Column(f"new_{c}", sa.Double(), nullable=True) for c in _OHLCV),
            sa.Column("max_rel_change", sa.Double(), nullable=True),
            sa.Column("run_id", sa.String(64), nullable=True),
            sa.Column("detected_at", _TS, nullable=False),
        )
        op.create_index("ix_candle_revisions_series", "candle_revisions", ["symbol", "timeframe", "ts"])
        op.create_index("ix_candle_revisions_detected", "candle_revisions", ["detected_at"])


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (no rebuild), so `candles` stays WITHOUT ROWID.
    op.drop_table("candle_revisions")
    op.drop_index("uq_rejected_candles_fingerprint", table_name="rejected_candles")
    for column in ("last_run_id", "last_seen_at", "times_seen", "fingerprint"):
        op.drop_column("rejected_candles", column)
    op.drop_column("candles", "complete")
