"""PostgreSQL read path: ADBC (adbc-driver-postgresql) fetching each page as one Arrow table.

Measured on one table of 1,000,000 M1 bars in one run (`benchmarks/bench_read.py`), ADBC's
`fetch_arrow_table` was the fastest way from PostgreSQL to columns: it runs the query as a binary
COPY and parses it in C++, where psycopg's binary COPY hands Python one row at a time (about a
third slower even with a single numpy `frombuffer` decode, postgres_copy.py) and any path through
row tuples (SQLAlchemy, `pandas.read_sql`) five to fifteen times slower.

The SELECT is sql.py's, so every column arrives non-NULL and typed (NULL flags beside nullable
values) and converts to numpy without per-value work. All pages of a read run inside one
read-only REPEATABLE READ transaction: one snapshot of the store, whatever is written meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_manager import Error as AdbcError
from sqlalchemy.engine import URL

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.pages import Page
from massive_pipeline.reader.request import ReadRequest
from massive_pipeline.reader.sql import PG, page_query, selected
from massive_pipeline.store.engine import PG_CONNECT_TIMEOUT_S, unavailable
from massive_pipeline.store.epochs import NS_PER_US

_PLACEHOLDER = re.compile(r"%s")


def numbered(sql: str) -> str:
    """`%s` placeholders as PostgreSQL's `$1, $2, …`, which ADBC binds."""
    count = iter(range(1, sql.count("%s") + 1))
    return _PLACEHOLDER.sub(lambda _m: f"${next(count)}", sql)


def uri(url: URL) -> str:
    """The libpq URI of a parsed store URL (password included: for connecting only)."""
    plain = url.set(drivername="postgresql")
    if "connect_timeout" not in plain.query:
        plain = plain.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
    return plain.render_as_string(hide_password=False)


@contextmanager
def snapshot(url: URL) -> Iterator[Any]:
    """An ADBC connection inside one read-only REPEATABLE READ transaction."""
    try:
        conn = adbc.connect(uri(url))
    except AdbcError as err:
        raise unavailable(url, "connect", err) from err
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn
    finally:
        conn.close()


def query(conn: Any, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(numbered(sql), params)
        return list(cur.fetchall())


def _timestamps_ns(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy() * (NS_PER_US if column.type.unit == "us" else 1)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """Strings as an object array, each distinct value built once (a series has one or two sources)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    labels = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return labels[encoded.indices.to_numpy()]


def fetch_page(conn: Any, request: ReadRequest, page: Page) -> Batch:
    """Run one page and convert its Arrow table to a `Batch`."""
    sql, params = page_query(PG, request, page, lambda ts: ts.to_pydatetime())
    with conn.cursor() as cur:
        cur.execute(numbered(sql), params)
        table = cur.fetch_arrow_table()
    columns = table.columns
    values: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for s, column in zip(selected(request.columns), columns[2:], strict=True):
        if s.null_flag:
            nulls[s.column] = column.to_numpy().astype(bool)
        elif s.column == "ingested_at":
            values[s.column] = _timestamps_ns(column)
        elif s.column == "source":
            values[s.column] = _strings(column)
        else:
            values[s.column] = column.to_numpy()
    return Batch(
        symbols=request.symbols,
        codes=columns[0].to_numpy().astype(np.int32),
        ts_ns=_timestamps_ns(columns[1]),
        values=values,
        nulls=nulls,
    )
