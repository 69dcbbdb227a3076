"""Bad arguments of a read fail before any connection, with one line naming the argument."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from massive_pipeline.core.timeframes import UnknownTimeframeError
from massive_pipeline.reader import iter_candles, read_candles
from massive_pipeline.reader.request import make_request

NOWHERE = "sqlite:////nonexistent/never/candles.sqlite"  # any connection attempt would fail differently


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"timeframe": "M2"}, UnknownTimeframeError, "'M2'"),
        ({"symbols": "EUR USD"}, ValueError, "'EUR USD'"),
        ({"symbols": []}, ValueError, "symbols"),
        ({"start": "2024-03-05", "end": "2024-03-04"}, ValueError, "before start"),
        ({"start": 1709510400}, TypeError, "start"),
        ({"end": "not a day"}, ValueError, "end"),
        ({"columns": ["close", "price"]}, ValueError, "'price'"),
        ({"output": "excel"}, ValueError, "output"),
        ({"include_forming": "yes"}, TypeError, "include_forming"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, named):
    args = {"symbols": "EURUSD", "timeframe": "M1", "start": "2024-03-04", "end": "2024-03-05", **kwargs}
    with pytest.raises(error) as err:
        read_candles(
            args.pop("symbols"),
            args.pop("timeframe"),
            args.pop("start"),
            args.pop("end"),
            url=NOWHERE,
            **args,
        )
    assert named in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"chunk_rows": 2.5}, "chunk_rows"),
        ({"chunk": "-1D"}, "chunk"),
        ({"chunk": "soon"}, "chunk"),
    ],
)
def test_bad_chunking_is_refused_when_called_not_when_iterated(kwargs, named):
    with pytest.raises(ValueError, match=named):
        iter_candles("EURUSD", "M1", "2024-03-04", "2024-03-05", url=NOWHERE, **kwargs)


def test_a_request_holds_sorted_unique_symbols_canonical_timeframe_and_millisecond_bounds():
    request = make_request(
        ["XAUUSD", "EURUSD", "XAUUSD"],
        "1h",
        dt.date(2024, 3, 4),
        pd.Timestamp("2024-03-05 00:00:00.0004"),
        ["close", "ts"],
        False,
        "pandas",
    )
    assert request.symbols == ("EURUSD", "XAUUSD") and request.timeframe == "H1"
    assert request.start == pd.Timestamp("2024-03-04", tz="UTC")
    assert request.end == pd.Timestamp("2024-03-05 00:00:00.001", tz="UTC")
    assert request.output_columns == ("symbol", "ts", "close")
