"""PostgreSQL read path of the reader: one ADBC connection per read, every page of it inside one snapshot.

The query of a page is the store's bulk read (store/bulk_read_postgres.py: ADBC with the values
inlined, so the driver reads through binary COPY into Arrow). What is the reader's own here is
the connection's life: a read or an iteration takes one of the process's kept connections to
the store (store/adbc_pool.py: opening one costs about 25 ms) for as long as it runs, and wraps
all of its pages in one read-only REPEATABLE READ transaction, so chunk edges see one store
whatever is written meanwhile. A read that fails, or an iteration abandoned halfway, closes its
connection instead of handing it back inside a transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import URL

from massive_pipeline.store import bulk_read_postgres
from massive_pipeline.store.bar_query import BarQuery

_PLACEHOLDER = re.compile(r"%s")


def numbered(sql: str) -> str:
    """`%s` placeholders as PostgreSQL's `$1, $2, …`, which ADBC binds."""
    count = iter(range(1, sql.count("%s") + 1))
    return _PLACEHOLDER.sub(lambda _m: f"${next(count)}", sql)


@contextmanager
def snapshot(url: URL) -> Iterator[Any]:
    """An ADBC connection inside one read-only REPEATABLE READ transaction, kept for the next read afterwards."""
    with bulk_read_postgres.pool(url).session(bulk_read_postgres.begin_snapshot) as conn:
        yield conn
        bulk_read_postgres.end_snapshot(conn)


def query(conn: Any, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    """A small probe with bound values (few rows, so the COPY path's speed does not matter)."""
    with conn.cursor() as cur:
        cur.execute(numbered(sql), params)
        return list(cur.fetchall())


def fetch(conn: Any, bars: BarQuery) -> pa.Table:
    return bulk_read_postgres.fetch(conn, bars)
