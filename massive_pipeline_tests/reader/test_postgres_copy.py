"""The binary COPY decoder on streams built by the store's own COPY encoder.

The reader trusts no layout it has not checked: runs of different `source` lengths decode
exactly, and a record that does not have the selected layout (a NULL where the SELECT promised a
value) is an error rather than shifted garbage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from massive_pipeline.reader.postgres_copy import decode
from massive_pipeline.reader.request import make_request
from massive_pipeline.store.bulk_postgres import (
    COPY_HEADER,
    COPY_TRAILER,
    PG_EPOCH_US,
    Field,
    encode_binary_copy,
)
from massive_pipeline.store.errors import StoreError

T0 = pd.Timestamp("2024-03-04", tz="UTC")
REQUEST = make_request(
    ["AAA", "BBB"], "M1", T0, T0 + pd.Timedelta(days=1), ["close", "source"], False, "pandas"
)


def stream(codes, minutes, closes, sources, close_null=None) -> bytes:
    """COPY rows of (code int4, ts, close float8, source text) one by one, in the given order."""
    parts = [COPY_HEADER]
    for i in range(len(codes)):
        raw = sources[i].encode()
        fields = [
            Field(">i4", np.array([codes[i]], dtype=np.int64)),
            Field(">i8", np.array([(T0.value // 1000 - PG_EPOCH_US) + minutes[i] * 60_000_000])),
            Field(">f8", np.array([closes[i]]), None if close_null is None else np.array([close_null[i]])),
            Field(f"S{len(raw)}", raw),
        ]
        parts.append(encode_binary_copy(fields, 1))
    return b"".join(parts) + COPY_TRAILER


def test_runs_of_different_source_lengths_decode_exactly():
    n = 300
    sources = ["massive"] * 100 + ["x"] + ["binance-spot"] * 150 + ["ab", "abc"] * 24 + ["massive"]
    codes = [0] * 200 + [1] * (n - 200)
    batch = decode(stream(codes, list(range(n)), [1.0 + i / 1000 for i in range(n)], sources), REQUEST)
    assert batch.codes.tolist() == codes
    assert (batch.ts_ns == (T0 + pd.to_timedelta(np.arange(n), unit="min")).asi8).all()
    assert batch.values["close"].tolist() == [1.0 + i / 1000 for i in range(n)]
    assert batch.values["source"].tolist() == sources


def test_an_empty_stream_is_an_empty_batch():
    batch = decode(COPY_HEADER + COPY_TRAILER, REQUEST)
    assert (
        len(batch) == 0
        and batch.values["close"].dtype == np.float64
        and batch.values["source"].dtype == object
    )


def test_a_null_where_the_select_promised_a_value_is_an_error_not_shifted_rows():
    data = stream([0, 0, 0], [0, 1, 2], [1.0, 2.0, 3.0], ["m", "m", "m"], close_null=[False, True, False])
    with pytest.raises(StoreError, match="layout"):
        decode(data, REQUEST)


def test_something_that_is_not_a_copy_stream_is_refused():
    with pytest.raises(StoreError, match="not a binary COPY stream"):
        decode(b"SELECT 1" * 4, REQUEST)
