"""Export file names: MT4's `<SYMBOL><minutes>.csv` and MT5's `<SYMBOL>_<TF>_<from>_<to>.csv`."""

from __future__ import annotations

import pytest

from massive_pipeline.broker.filenames import ExportName, parse_export_name
from massive_pipeline.core.timeframes import Timeframe


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("XAUUSD15.csv", ExportName("XAUUSD", Timeframe.M15)),
        ("EURUSD1440.csv", ExportName("EURUSD", Timeframe.D1)),
        ("eurusd60.CSV", ExportName("EURUSD", Timeframe.H1)),
        ("XAUUSD_M15_202501020000_202512311745.csv", ExportName("XAUUSD", Timeframe.M15)),
        ("XAUUSD_H4.tsv", ExportName("XAUUSD", Timeframe.H4)),
        ("XAUUSD_M2_2025.csv", None),
        ("XAUUSD7.csv", None),
        ("XAUUSD15.xlsx", None),
        ("notes.txt", None),
    ],
)
def test_names(name, expected):
    assert parse_export_name(name) == expected


def test_a_declared_symbol_ending_in_digits_wins_the_split():
    assert parse_export_name("DAX4015.csv") == ExportName("DAX40", Timeframe.M15)
    assert parse_export_name("DAX4015.csv", symbols=("DAX401",)) == ExportName("DAX401", Timeframe.M5)
