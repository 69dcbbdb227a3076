"""What a bulk read may ask for (`store/bar_query.py`), without a database.

The PostgreSQL path writes a query's values into the SQL text, so a `BarQuery` must refuse
anything that is not a checked symbol, a canonical timeframe, a UTC timestamp or a count, and
the WHERE clause must put every value through the backend's renderer.
"""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.core.timeframes import UnknownTimeframeError
from massive_pipeline.store.bar_query import BarQuery, where_clause

T0 = pd.Timestamp("2024-03-04", tz="UTC")
T1 = T0 + pd.Timedelta(days=1)


class Recorder:
    """Renders each value as a numbered mark and remembers it, as a bound-parameter backend would."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def value(self, value: object) -> str:
        self.values.append(value)
        return f"<{len(self.values)}>"

    def instant(self, ts: pd.Timestamp) -> str:
        return self.value(ts)


def rendered(query: BarQuery) -> tuple[str, list[object]]:
    rec = Recorder()
    return where_clause(query, rec.value, rec.instant, complete="done"), rec.values


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"symbols": ()}, ValueError, "at least one symbol"),
        ({"symbols": ("EUR USD",)}, ValueError, "symbol must be a non-empty string"),
        ({"symbols": ("EURUSD",), "after_symbol": "A B"}, ValueError, "without spaces"),
        ({"timeframe": "m1"}, ValueError, "canonical form, got 'm1'"),
        ({"timeframe": "M2"}, UnknownTimeframeError, "unknown timeframe 'M2'"),
        ({"columns": ("close", "price")}, ValueError, r"unknown column\(s\) \['price'\]"),
        ({"start": pd.Timestamp("2024-03-04")}, TypeError, "start must be a UTC pandas Timestamp"),
        ({"end": "2024-03-05"}, TypeError, "end must be a UTC pandas Timestamp"),
        ({"start": T0 + pd.Timedelta(microseconds=1)}, ValueError, "start must be a whole millisecond"),
        ({"symbols": ("A1", "B1"), "after_ts": T0}, ValueError, "exactly one symbol"),
        ({"symbols": ("A1", "B1"), "newest_first": True}, ValueError, "exactly one symbol"),
        ({"limit": -1}, ValueError, "limit must be a non-negative integer, got -1"),
        ({"limit": True}, ValueError, "limit must be a non-negative integer, got True"),
        ({"limit": "5; DROP TABLE candles"}, ValueError, "limit must be a non-negative integer"),
    ],
)
def test_anything_but_checked_values_is_refused_with_a_message_naming_it(kwargs, error, message):
    arguments = {"symbols": ("EURUSD",), "timeframe": "M1", **kwargs}
    with pytest.raises(error, match=message):
        BarQuery(**arguments)


def test_every_value_goes_through_the_renderer_and_the_order_is_the_primary_key():
    where, values = rendered(BarQuery(("AAA", "BBB"), "H1", T0, T1, include_forming=False))
    assert where == (
        " WHERE timeframe = <1> AND symbol IN (<2>, <3>) AND ts >= <4> AND ts < <5> AND done"
        " ORDER BY symbol, timeframe, ts"
    )
    assert values == ["H1", "AAA", "BBB", T0, T1]


def test_a_keyset_page_has_one_lower_bound_where_the_last_page_stopped():
    """`ts > after` instead of `ts >= start`, so the index range starts at the continuation."""
    after = T0 + pd.Timedelta(hours=5)
    where, values = rendered(BarQuery(("AAA",), "M1", T0, T1, after_ts=after, limit=101))
    assert (
        where
        == " WHERE timeframe = <1> AND symbol = <2> AND ts > <3> AND ts < <4> ORDER BY symbol, timeframe, ts LIMIT 101"
    )
    assert values == ["M1", "AAA", after, T1]
    where, values = rendered(BarQuery(("AAA", "BBB", "CCC"), "M1", T0, T1, after_symbol="AAA"))
    assert "symbol IN (<2>, <3>, <4>) AND symbol > <5> AND ts >= <6>" in where
    assert values[4] == "AAA"


def test_newest_first_reads_backwards_from_the_end_and_unbounded_sides_have_no_condition():
    where, values = rendered(BarQuery(("AAA",), "D1", end=T1, newest_first=True, limit=0))
    assert where == (
        " WHERE timeframe = <1> AND symbol IN (<2>) AND ts < <3>"
        " ORDER BY symbol DESC, timeframe DESC, ts DESC LIMIT 0"
    )
    assert values == ["D1", "AAA", T1]
    assert BarQuery(("AAA",), "D1").multi is False and BarQuery(("AAA", "BBB"), "D1").multi is True
