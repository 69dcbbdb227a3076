"""A content hash of stored candles that does not depend on backend, chunking or ingestion time.

Rows are streamed in primary-key order and packed into fixed-width binary records (numpy
structured arrays), so the hash of a SQLite store and a PostgreSQL store holding the same bars is
the same, and memory stays bounded however many rows there are. `source` and `ingested_at` are
left out on purpose: re-writing identical bars must not change the checksum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

VERSION = b"massive-candles-checksum-v1\n"
RECORD = np.dtype(
    [
        ("symbol", "S16"),
        ("timeframe", "S4"),
        ("ts_us", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("volume", "<f8"),
        ("vwap", "<f8"),
        ("vwap_null", "u1"),
        ("trades", "<i8"),
        ("trades_null", "u1"),
    ]
)
# Columns each streamed row must carry, in this order.
ROW_COLUMNS = ("symbol", "timeframe", "ts_us", "open", "high", "low", "close", "volume", "vwap", "trades")


def pack_rows(rows: Sequence[Sequence[object]]) -> bytes:
    """Fixed-width little-endian records for rows in `ROW_COLUMNS` order (NULLs as flag + zero)."""
    out = np.zeros(len(rows), dtype=RECORD)
    if not rows:
        return b""
    cols = list(zip(*rows, strict=True))
    out["symbol"] = [str(s).encode("utf-8") for s in cols[0]]
    out["timeframe"] = [str(s).encode("utf-8") for s in cols[1]]
    out["ts_us"] = np.asarray(cols[2], dtype=np.int64)
    for name, col in zip(("open", "high", "low", "close", "volume"), cols[3:8], strict=True):
        out[name] = np.asarray(col, dtype=np.float64)
    for name, col in (("vwap", cols[8]), ("trades", cols[9])):
        null = np.fromiter((v is None for v in col), dtype=bool, count=len(rows))
        out[f"{name}_null"] = null
        out[name] = [0 if v is None else v for v in col]
    return out.tobytes()


def checksum_chunks(chunks: Iterable[Sequence[Sequence[object]]]) -> str:
    """SHA-256 hex digest over the packed records of all chunks, in order."""
    digest = hashlib.sha256(VERSION)
    for rows in chunks:
        digest.update(pack_rows(rows))
    return digest.hexdigest()
