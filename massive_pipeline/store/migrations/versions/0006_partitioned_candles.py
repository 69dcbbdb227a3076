"""PostgreSQL `candles` partitioned by timeframe, then by UTC month (see `store/partitions.py`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14

PostgreSQL cannot turn a table into a partitioned one in place, so the upgrade builds the new
table beside the old and swaps them, in the one transaction `migrate.py` runs every revision in
(a failure leaves the old table as it was): the old `candles` (and its primary key) is renamed,
the partitioned `candles` made with the same columns, defaults and check, one table per timeframe
and one per month between each timeframe's first and last bar are created, every row is copied by
one INSERT ... SELECT, the primary key is built afterwards on each month (a sorted build, faster
than maintaining the index row by row), and the old table is dropped. Nothing references
`candles` by key (revisions, rejects and gaps name the series in columns of their own), so every
other table keeps working.

What it costs: one read and one write of every row plus the index builds, and the disk of the
table twice until the commit; writers wait on the schema lock meanwhile. Measured by
`benchmarks/bench_store_scale.py`: 45 million bars in 354 s (with the VACUUM ANALYZE after it),
0.9 million in 13 s, on a loaded 2-core machine. SQLite keeps its table: this revision does nothing there. Downgrading
copies the rows back into a plain table the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from alembic import op

from massive_pipeline.store import partitions

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMEFRAMES = ("M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "D1_NY", "W1_NY")
_KEY = "PRIMARY KEY (symbol, timeframe, ts)"
_OLD = "candles_rev0006_old"


def _swap_out(conn: sa.Connection) -> None:
    """Rename `candles` and its key out of the way, so the new table can take both names."""
    conn.execute(sa.text(f"ALTER TABLE candles RENAME TO {_OLD}"))
    conn.execute(sa.text(f"ALTER TABLE {_OLD} RENAME CONSTRAINT candles_pkey TO {_OLD}_pkey"))


def _copy_in(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"INSERT INTO candles SELECT * FROM {_OLD}"))
    conn.execute(sa.text(f"ALTER TABLE candles ADD CONSTRAINT candles_pkey {_KEY}"))
    conn.execute(sa.text(f"DROP TABLE {_OLD}"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _swap_out(conn)
    conn.execute(sa.text(
        f"CREATE TABLE candles (LIKE {_OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (timeframe)"
    ))
    partitions.create_levels(conn, _TIMEFRAMES)
    spans = conn.execute(sa.text(f"SELECT timeframe, min(ts), max(ts) FROM {_OLD} GROUP BY timeframe")).all()
    for tf, first, last in spans:
        months = pd.date_range(pd.Timestamp(first).tz_convert("UTC").floor("D").replace(day=1),
                               pd.Timestamp(last).tz_convert("UTC"), freq="MS")
        partitions.create(conn, tf, list(months), attach=False)
    _copy_in(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _swap_out(conn)
    conn.execute(sa.text(f"CREATE TABLE candles (LIKE {_OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    _copy_in(conn)  # dropping the partitioned table drops its partitions
