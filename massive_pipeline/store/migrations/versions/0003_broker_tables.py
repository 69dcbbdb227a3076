"""The broker comparison tables: `broker_bars` (imported MT4/MT5 exports) and `broker_comparisons`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10

Two new tables and nothing else, so the upgrade is instant on any store and the candles are not
touched. They mirror `schema.broker_bars` / `schema.broker_comparisons` (a test compares the
migrated schema with `create_all`'s).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.TIMESTAMP(timezone=True).with_variant(sa.BigInteger(), "sqlite")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIMEFRAMES = ("M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1")


def _in(column: str, values: Sequence[str], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


def upgrade() -> None:
    op.create_table(
        "broker_bars",
        sa.Column("broker", sa.String(32), primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("timeframe", sa.String(4), primary_key=True),
        sa.Column("file_sha256", sa.String(64), primary_key=True),
        sa.Column("server_time", _TS, primary_key=True),
        sa.Column("ts", _TS, nullable=False),
        *(sa.Column(c, sa.Double(), nullable=False) for c in ("open", "high", "low", "close", "volume")),
        sa.Column("real_volume", sa.Double(), nullable=True),
        sa.Column("spread", sa.Double(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        _in("timeframe", _TIMEFRAMES, "ck_broker_bars_timeframe"),
    )
    op.create_index("ix_broker_bars_series", "broker_bars", ["broker", "symbol", "timeframe", "ts"])
    op.create_table(
        "broker_comparisons",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("timeframe", sa.String(4), nullable=False),
        sa.Column("period_start", _TS, nullable=True),
        sa.Column("period_end", _TS, nullable=True),
        sa.Column("offset_rule", sa.String(16), nullable=False),
        sa.Column("time_offset_minutes", sa.Integer(), nullable=False),
        sa.Column("offset_source", sa.String(16), nullable=False),
        sa.Column("offset_confidence", sa.Double(), nullable=True),
        sa.Column("bars_compared", sa.Integer(), nullable=False),
        *(
            sa.Column(c, sa.Double(), nullable=True)
            for c in ("mean_diff", "std_diff", "max_abs_diff", "mean_diff_pips")
        ),
        sa.Column("pip_size", sa.Double(), nullable=False),
        sa.Column("threshold_pips", sa.Double(), nullable=False),
        sa.Column("recommended_offset", sa.Double(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("compared_at", _TS, nullable=False),
        _in("offset_rule", ("fixed", "new_york_close"), "ck_broker_comparisons_offset_rule"),
    )
    op.create_index(
        "ix_broker_comparisons_series", "broker_comparisons", ["broker", "symbol", "timeframe", "compared_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_broker_comparisons_series", table_name="broker_comparisons")
    op.drop_table("broker_comparisons")
    op.drop_index("ix_broker_bars_series", table_name="broker_bars")
    op.drop_table("broker_bars")
