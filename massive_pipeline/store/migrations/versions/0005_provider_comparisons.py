"""The cross-check results of two catalog entries' bars: `provider_comparisons`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12

One new table and nothing else, so the upgrade is instant on any store and the candles are not
touched. It mirrors `schema.provider_comparisons` (a test compares the migrated schema with
`create_all`'s).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.TIMESTAMP(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provider_comparisons",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("other_symbol", sa.String(16), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("partition", sa.String(32), primary_key=True),
        sa.Column("bars_compared", sa.Integer(), nullable=False),
        sa.Column("median_rel_diff", sa.Double(), nullable=True),
        sa.Column("max_rel_diff", sa.Double(), nullable=True),
        sa.Column("bars_over_tolerance", sa.Integer(), nullable=False),
        sa.Column("tolerance", sa.Double(), nullable=False),
        sa.Column("basis", sa.Double(), nullable=True),
        sa.Column("compared_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_comparisons")
