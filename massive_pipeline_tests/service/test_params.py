"""Parsing the service's parameters: instants, days, symbols, timeframes and cursors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from massive_pipeline.core.catalog import parse_catalog
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.service import params
from massive_pipeline.service.errors import BadCursor, BadParameter, NotFound
from massive_pipeline_tests.conftest import SMALL_CATALOG

CATALOG = parse_catalog(SMALL_CATALOG)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05", "2026-10-05 00:00"),
        ("2026-10-05T13:05:00Z", "2026-10-05 13:05"),
        ("2026-10-05T15:05:00+02:00", "2026-10-05 13:05"),
        ("2026-10-05T13:05", "2026-10-05 13:05"),  # naive: UTC
        (" 2026-10-05 ", "2026-10-05 00:00"),
    ],
)
def test_an_instant_is_a_utc_day_or_iso_timestamp(text, expected):
    assert params.instant(text, "start") == pd.Timestamp(expected, tz="UTC")


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "now",
        "1728000000",
        "2026-02-30",
        "05/10/2026",
        "",
        "2026-10-05T25:00",
        "2300-01-01",
        "1900-01-01T00:00:00Z",
    ],
)
def test_anything_else_is_refused_naming_the_parameter(text):
    with pytest.raises(BadParameter) as caught:
        params.instant(text, "end")
    assert caught.value.parameter == "end" and caught.value.message.startswith("end: ")
    assert caught.value.status_code == 422


def test_a_range_must_end_after_it_starts():
    assert params.time_range("2026-10-05", None) == (pd.Timestamp("2026-10-05", tz="UTC"), None)
    with pytest.raises(BadParameter, match="^end: .* is not after start"):
        params.time_range("2026-10-05T12:00:00Z", "2026-10-05T12:00:00Z")


def test_days_are_only_days():
    assert params.day("2026-10-05", "start") == dt.date(2026, 10, 5)
    for text in ("2026-10-05T00:00:00Z", "2026/10/05", "5 Oct 2026"):
        with pytest.raises(BadParameter, match="^start: "):
            params.day(text, "start")


def test_symbols_are_looked_up_case_insensitively_and_unknown_ones_are_404():
    assert params.symbol_spec(CATALOG, "eurusd").symbol == "EURUSD"
    assert [s.symbol for s in params.symbol_specs(CATALOG, ["EURUSD,gbpusd", "BTCUSD"])] == [
        "EURUSD",
        "GBPUSD",
        "BTCUSD",
    ]
    with pytest.raises(NotFound) as caught:
        params.symbol_spec(CATALOG, "EURUSX")
    assert (
        caught.value.status_code == 404
        and "'EURUSX'" in caught.value.message
        and "EURUSD" in caught.value.message
    )


def test_timeframes_take_aliases_and_drop_repeats():
    assert params.timeframes(["1h,H1", "5min"]) == [Timeframe.H1, Timeframe.M5]
    with pytest.raises(BadParameter, match="^timeframe: unknown timeframe 'H2'"):
        params.timeframes(["H2"])


def test_a_cursor_round_trips_and_is_bound_to_its_series():
    spec = CATALOG.get("EURUSD")
    at = pd.Timestamp("2026-10-05 13:05", tz="UTC")
    token = params.Cursor("EURUSD", Timeframe.M1, at).encode()
    assert "=" not in token and params.Cursor.decode(token, spec, Timeframe.M1).after == at
    with pytest.raises(BadCursor, match="^cursor: was issued for EURUSD M1, not EURUSD H1$"):
        params.Cursor.decode(token, spec, Timeframe.H1)
    with pytest.raises(BadCursor, match="^cursor: was issued for EURUSD M1, not GBPUSD M1$"):
        params.Cursor.decode(token, CATALOG.get("GBPUSD"), Timeframe.M1)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        "eyJ2IjoyfQ",
        "eyJ2IjoxLCJzIjoiRVVSVVNEIiwidCI6Ik0xIiwiYSI6IngifQ",
        "eyJ2IjoxLCJzIjoiRVVSVVNEIiwidCI6Ik05IiwiYSI6MX0",
        "W10",
    ],
)
def test_a_cursor_the_service_did_not_issue_is_400(token):
    with pytest.raises(BadCursor) as caught:
        params.Cursor.decode(token, CATALOG.get("EURUSD"), Timeframe.M1)
    assert caught.value.status_code == 400 and caught.value.parameter == "cursor"
