"""PostgreSQL read path without ADBC: one binary `COPY (SELECT …) TO STDOUT` per page, decoded with numpy.

The reader uses it only where adbc-driver-postgresql cannot be loaded (postgres_adbc.py is the
measured faster path, `benchmarks/bench_read.py`): psycopg hands the COPY rows over one Python
call per row, and numpy then reads the whole stream as a structured array with one `frombuffer`
per run of equal-length `source` values.

Soundness: the layout is checked, not assumed. Every record's field count and every field's
length must be what the SELECT promises (sql.py makes them all fixed-width and non-NULL); the one
variable-length column, `source`, comes last, and records are decoded in runs of equal source
length, each run starting where the previous one provably ended. Timestamps outside pandas'
nanosecond range are refused with an error naming the column instead of wrapping around.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy.engine import URL

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.pages import Page
from massive_pipeline.reader.request import ReadRequest
from massive_pipeline.reader.sql import PG, Selected, page_query, selected
from massive_pipeline.store.bulk_postgres import COPY_HEADER, COPY_TRAILER, PG_EPOCH_US
from massive_pipeline.store.engine import PG_CONNECT_TIMEOUT_S
from massive_pipeline.store.epochs import NS_PER_US
from massive_pipeline.store.errors import StoreError

_WIRE_DTYPES: dict[str, str] = {
    "code": ">i4",
    "ts": ">i8",
    "open": ">f8",
    "high": ">f8",
    "low": ">f8",
    "close": ">f8",
    "volume": ">f8",
    "vwap": ">f8",
    "trades": ">i8",
    "ingested_at": ">i8",
    "complete": "?",
}
_MIN_RUN = 64
# Binary timestamptz microseconds since 2000-01-01 that pandas' datetime64[ns] can hold.
_US_MIN = pd.Timestamp.min.value // NS_PER_US + 1 - PG_EPOCH_US
_US_MAX = pd.Timestamp.max.value // NS_PER_US - PG_EPOCH_US


def conninfo(url: URL) -> str:
    """A libpq connection string for a parsed store URL (password included: for connecting only)."""
    params: dict[str, object] = {k: v for k, v in url.query.items() if isinstance(v, str)}
    params.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.username),
        ("password", url.password),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = value
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def snapshot(url: URL) -> Iterator[psycopg.Connection]:
    """A connection inside one read-only REPEATABLE READ transaction: every page sees the same store."""
    conn = psycopg.connect(conninfo(url), autocommit=False)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn
    finally:
        conn.close()


def _record_dtype(fields: list[tuple[str, str]], text_length: int | None) -> np.dtype:
    layout: list[tuple[str, str]] = [("n", ">i2")]
    for name, wire in fields:
        layout += [(f"len_{name}", ">i4"), (name, wire)]
    if text_length is not None:
        layout += [("len_source", ">i4"), ("source", f"S{max(text_length, 1)}" if text_length else "V0")]
    return np.dtype(layout)


def _wire_fields(columns: list[Selected]) -> list[tuple[str, str]]:
    out = [("code", _WIRE_DTYPES["code"]), ("ts", _WIRE_DTYPES["ts"])]
    for s in columns:
        if s.column == "source":
            continue
        out.append((f"{s.column}_null", "?") if s.null_flag else (s.column, _WIRE_DTYPES[s.column]))
    return out


def _valid(records: np.ndarray, fields: list[tuple[str, str]], text_length: int | None) -> np.ndarray:
    """Per record: whether its header and every length field say what the layout assumes."""
    ok = records["n"] == len(fields) + (text_length is not None)
    for name, wire in fields:
        ok &= records[f"len_{name}"] == np.dtype(wire).itemsize
    if text_length is not None:
        ok &= records["len_source"] == text_length
    return ok


def split_records(body: memoryview, fields: list[tuple[str, str]], has_text: bool) -> list[np.ndarray]:
    """The COPY tuples as structured arrays, one per run of records with equal `source` length.

    A run is decoded under the length its first record declares; the first record whose header
    or lengths disagree starts the next run. Records before it are exact, since each one's
    verified lengths fix where the next begins.
    """
    fixed = _record_dtype(fields, None).itemsize
    runs: list[np.ndarray] = []
    pos, size_hint = 0, _MIN_RUN
    while pos < len(body):
        text_length = None
        if has_text:
            if pos + fixed + 4 > len(body):
                raise StoreError(
                    "binary COPY stream does not have the layout the reader selected: it ends inside a record"
                )
            text_length = int.from_bytes(body[pos + fixed : pos + fixed + 4], "big", signed=True)
            if text_length < 0:
                raise StoreError(
                    "binary COPY record does not have the layout the reader selected: a NULL source"
                )
        dtype = _record_dtype(fields, text_length)
        available = (len(body) - pos) // dtype.itemsize
        count = available if not has_text else min(available, max(size_hint, _MIN_RUN))
        records = np.frombuffer(body, dtype=dtype, count=count, offset=pos)
        ok = _valid(records, fields, text_length)
        good = count if ok.all() else int(np.argmin(ok))
        if good == 0:
            raise StoreError("binary COPY record does not have the layout the reader selected")
        runs.append(records[:good])
        pos += good * dtype.itemsize
        size_hint = 2 * good if good == count else good
    return runs


def _timestamps(wire: np.ndarray, column: str) -> np.ndarray:
    us = wire.astype(np.int64)
    if len(us) and (us.min() < _US_MIN or us.max() > _US_MAX):
        raise StoreError(
            f"column {column!r} holds timestamps outside 1677-2262, which pandas cannot represent"
        )
    return (us + PG_EPOCH_US) * NS_PER_US


def _sources(runs: list[np.ndarray]) -> np.ndarray:
    parts = []
    for run in runs:
        raw = run["source"]
        if raw.dtype.kind == "V":
            parts.append(np.full(len(run), "", dtype=object))
        elif (raw == raw[0]).all():
            parts.append(np.full(len(run), raw[0].decode("utf-8"), dtype=object))
        else:
            uniques, inverse = np.unique(raw, return_inverse=True)
            parts.append(np.array([u.decode("utf-8") for u in uniques], dtype=object)[inverse])
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def decode(data: bytes | bytearray | memoryview, request: ReadRequest) -> Batch:
    """A whole binary COPY stream (header, tuples, trailer) of a page as a `Batch`."""
    view = memoryview(data)
    header_len = len(COPY_HEADER)
    if bytes(view[:11]) != COPY_HEADER[:11] or bytes(view[-2:]) != COPY_TRAILER:
        raise StoreError("the server's answer is not a binary COPY stream")
    extension = int.from_bytes(view[15:19], "big")
    body = view[header_len + extension : len(view) - len(COPY_TRAILER)]
    columns = selected(request.columns)
    fields = _wire_fields(columns)
    if not len(body):
        return Batch.empty(request.symbols, request.columns)
    runs = split_records(body, fields, "source" in request.columns)

    def joined(name: str) -> np.ndarray:
        return runs[0][name] if len(runs) == 1 else np.concatenate([r[name] for r in runs])

    values: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for s in columns:
        if s.column == "source":
            values["source"] = _sources(runs)
        elif s.null_flag:
            nulls[s.column] = joined(f"{s.column}_null").astype(bool)
        elif s.column == "ingested_at":
            values[s.column] = _timestamps(joined(s.column), s.column)
        else:
            values[s.column] = joined(s.column).astype(_WIRE_DTYPES[s.column].replace(">", "="))
    return Batch(
        symbols=request.symbols,
        codes=joined("code").astype(np.int32),
        ts_ns=_timestamps(joined("ts"), "ts"),
        values=values,
        nulls=nulls,
    )


def query(conn: psycopg.Connection, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        return list(cur.execute(sql, params).fetchall())


def fetch_page(conn: psycopg.Connection, request: ReadRequest, page: Page) -> Batch:
    """Run one page as a binary COPY and decode it."""
    sql, params = page_query(PG, request, page, lambda ts: ts.to_pydatetime())
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
        for chunk in copy:
            buffer += chunk
    return decode(buffer, request)
