"""PostgreSQL bulk read: one ADBC query per `BarQuery`, its values written into the SQL as literals, fetched as Arrow.

Why ADBC: adbc-driver-postgresql runs a query as `COPY (query) TO STDOUT (FORMAT binary)` and
parses the stream in C++ straight into Arrow columns. For 1,000,000 bars in one run of
`benchmarks/bench_read.py` that was the fastest way from PostgreSQL to columns: psycopg's
binary COPY decoded by a single numpy `frombuffer` took 1.3 times as long, and anything that
builds a Python tuple per row (SQLAlchemy, `pandas.read_sql`) about 15 times as long.

Why literals and not bound parameters: PostgreSQL's COPY takes no parameters, so the driver can
use COPY only for a query without them; with bound parameters it runs an ordinary prepared
statement whose rows libpq holds field by field, 1.5 to 1.7 times slower for the same bars
(measured side by side, the bench's "adbc bound"). So the values are inlined, and that is safe
because nothing unchecked reaches the text: a `BarQuery` holds only symbol names `check_symbol`
accepted, a timeframe of the closed list, timestamps and an integer limit (bar_query.py);
strings are then quoted by psycopg's own literal quoting (`psycopg.sql.quote`: quotes doubled,
a backslash turns the literal into the E'' form, right whatever `standard_conforming_strings`
says), timestamps are rendered from their integer microseconds, the limit by `int`, and column
names come from a closed list. The tests read back symbols made to break out of a literal.

NULLs come as they are: Arrow's validity bitmaps say where vwap or trades is missing, so the
SELECT needs no flag columns and a stored NaN stays distinct from a NULL in Arrow output.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from adbc_driver_manager import Error as AdbcError
from psycopg import sql
from sqlalchemy.engine import URL

from massive_pipeline.store.adbc_pool import AdbcPool, shared
from massive_pipeline.store.bar_query import BarQuery, where_clause
from massive_pipeline.store.bar_table import conform, query_schema
from massive_pipeline.store.engine import PG_CONNECT_TIMEOUT_S, unavailable
from massive_pipeline.store.epochs import NS_PER_US

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def uri(url: URL) -> str:
    """The libpq URI of a parsed store URL (password included: for connecting only)."""
    plain = url.set(drivername="postgresql")
    if "connect_timeout" not in plain.query:
        plain = plain.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
    return plain.render_as_string(hide_password=False)


def connect(url: URL) -> Any:
    """A new autocommit ADBC connection (a read is one statement, so one snapshot, unless `begin_snapshot`).

    The driver's DB-API module is imported here, on the first connection: it loads the driver and
    polars (a quarter of a second), which a process that never bulk-reads PostgreSQL (every run
    and step process on the SQLite store) would otherwise pay when it loads the code location."""
    import adbc_driver_postgresql.dbapi as adbc

    try:
        return adbc.connect(uri(url), autocommit=True)
    except AdbcError as err:
        raise unavailable(url, "connect", err) from err


def pool(url: URL) -> AdbcPool:
    """The process's kept ADBC connections to this store (adbc_pool.py), shared by every reader of it."""
    return shared(uri(url), lambda: connect(url))


def begin_snapshot(conn: Any) -> None:
    """Start one read-only REPEATABLE READ transaction: every query until `end_snapshot` sees the same store."""
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


def end_snapshot(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("ROLLBACK")


def text_literal(value: object) -> str:
    """A checked symbol or timeframe as a SQL string literal, quoted by psycopg."""
    if not isinstance(value, str):
        raise TypeError(f"only checked strings are inlined, got {value!r}")
    return sql.quote(value)


def instant_literal(ts: pd.Timestamp) -> str:
    """A UTC instant as a `timestamptz` literal, rendered from its integer microseconds (floored: bars sit on them)."""
    micros = int(ts.value) // NS_PER_US
    return sql.quote(_EPOCH + dt.timedelta(microseconds=micros))


def select_sql(query: BarQuery) -> str:
    """The SELECT of `query` with its values inlined (see the module docstring for why that is safe)."""
    columns = ["ts", *query.columns]
    if query.multi:
        whens = " ".join(f"WHEN {text_literal(s)} THEN {i}" for i, s in enumerate(query.symbols))
        columns.insert(0, f"CASE symbol {whens} END")
    where = where_clause(query, text_literal, instant_literal, complete="complete")
    return f"SELECT {', '.join(columns)} FROM candles{where}"


def fetch(conn: Any, query: BarQuery) -> pa.Table:
    """Run `query` on an ADBC connection; the bars as a table of `query_schema(query, "us")`, oldest first."""
    with conn.cursor() as cur:
        cur.execute(select_sql(query))
        table = cur.fetch_arrow_table()
    if query.newest_first:
        table = table.take(pa.array(np.arange(table.num_rows - 1, -1, -1)))
    return conform(table, query_schema(query, "us"), f"read of {', '.join(query.symbols)} {query.timeframe}")
