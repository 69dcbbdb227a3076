"""The New York close convention's timeframes (D1_NY, W1_NY) in every table that names a timeframe.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10

`timeframe` columns grow from 4 to 8 characters and `candles`' check constraint lists the two
new names. On PostgreSQL widening a varchar is a catalog change (no table rewrite) and the check is
dropped and added again (one scan of `candles`, under the schema lock every writer takes anyway).
SQLite can alter neither a declared type nor a constraint, so each of the five tables is rebuilt
from its own stored DDL with only those words changed (its other columns, defaults and WITHOUT
ROWID stay as they are), the rows copied, and its indexes created again from their stored DDL.
Downgrading deletes the New York bars first: the older schema has no room for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("candles", "sync_status", "rejected_candles", "candle_revisions", "data_gaps")
_UTC_NAMES = ("M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1")
_NEW_YORK_NAMES = ("D1_NY", "W1_NY")
_CHECK = "ck_candles_timeframe"


def _check(names: Sequence[str]) -> str:
    return "timeframe IN (" + ", ".join(f"'{n}'" for n in names) + ")"


_OLD_CHECK, _NEW_CHECK = _check(_UTC_NAMES), _check(_UTC_NAMES + _NEW_YORK_NAMES)


def _sqlite_rebuild(table: str, old: str, new: str, old_check: str, new_check: str) -> None:
    """Rebuild `table` from its stored DDL with the timeframe column's type (and check) replaced."""
    conn = op.get_bind()
    ddl = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table}
    ).scalar_one()
    indexes = (
        conn.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
            ),
            {"t": table},
        )
        .scalars()
        .all()
    )
    if f"timeframe {new}" in ddl and (table != "candles" or new_check in ddl):
        return  # made by a newer create_all already (candle_revisions, see revision 0002)
    changed = ddl.replace(f"timeframe {old}", f"timeframe {new}", 1).replace(old_check, new_check)
    if changed == ddl or (table == "candles" and new_check not in changed):
        raise RuntimeError(
            f"revision 0004: the stored DDL of {table} is not the shape this revision expects: {ddl}"
        )
    staging = f"{table}_rev0004"
    # a table SQLite has renamed before is stored as CREATE TABLE "name" (
    renamed = re.sub(rf'^CREATE TABLE "?{table}"? \(', f"CREATE TABLE {staging} (", changed, count=1)
    conn.execute(sa.text(renamed))
    conn.execute(sa.text(f"INSERT INTO {staging} SELECT * FROM {table}"))
    conn.execute(sa.text(f"DROP TABLE {table}"))
    conn.execute(sa.text(f"ALTER TABLE {staging} RENAME TO {table}"))
    for index in indexes:
        conn.execute(sa.text(index))


def _change(old_len: int, new_len: int, old_check: str, new_check: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in _TABLES:
            _sqlite_rebuild(table, f"VARCHAR({old_len})", f"VARCHAR({new_len})", old_check, new_check)
        return
    op.drop_constraint(_CHECK, "candles", type_="check")
    for table in _TABLES:
        op.alter_column(table, "timeframe", type_=sa.String(new_len), existing_type=sa.String(old_len))
    op.create_check_constraint(_CHECK, "candles", sa.text(new_check))


def upgrade() -> None:
    _change(4, 8, _OLD_CHECK, _NEW_CHECK)


def downgrade() -> None:
    names = ", ".join(f"'{n}'" for n in _NEW_YORK_NAMES)
    for table in _TABLES:
        op.execute(f"DELETE FROM {table} WHERE timeframe IN ({names})")
    _change(8, 4, _NEW_CHECK, _OLD_CHECK)
