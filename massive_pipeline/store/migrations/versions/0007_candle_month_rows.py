"""The month ledger `candle_month_rows`: stored rows per (timeframe, UTC month, symbol).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-16

One new table, filled from `candles` by one INSERT ... SELECT ... GROUP BY in the upgrade's
transaction (`month_rows.fill`), so the ledger starts equal to what is stored; from then on the
store's write, delete and retention paths keep it in the transactions that change the rows
(`store/month_rows.py` says why there and not in triggers). It mirrors `schema.candle_month_rows`
(a test compares the migrated schema with `create_all`'s). On both backends: the schema is one.

What it costs: one read of every row (no write of `candles`): 9 million bars in 9.9 s, 0.9 million
in 1.2 s (`benchmarks/bench_store_scale.py --symbols 10`, a loaded 2-core machine). Downgrading
drops the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from massive_pipeline.store import month_rows

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.TIMESTAMP(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "candle_month_rows",
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("month", _TS, primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
    )
    month_rows.fill(op.get_bind())


def downgrade() -> None:
    op.drop_table("candle_month_rows")
