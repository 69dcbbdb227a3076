"""brokers.yaml: validated at load, each mistake one message naming the file, the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from massive_pipeline.broker.config import BrokerConfigError, load_brokers, parse_brokers
from massive_pipeline.broker.offset import OffsetRule
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.core.timeframes import Timeframe

CATALOG = load_catalog()


def test_a_broker_with_defaults_and_one_with_everything_set(tmp_path):
    path = tmp_path / "brokers.yaml"
    path.write_text(
        "brokers:\n"
        "  - {name: icm, folder: /data/icm, symbols: [xauusd, EURUSD]}\n"
        "  - {name: pepper_2, folder: ~/exports, symbols: [XAUUSD], timeframes: [m1, 1h], offset: '+02:00',"
        " threshold_pips: 1}\n"
    )
    icm, pepper = load_brokers(CATALOG, path)
    assert (icm.name, icm.folder, icm.symbols, icm.timeframes, icm.offset) == (
        "icm",
        Path("/data/icm"),
        ("XAUUSD", "EURUSD"),
        (Timeframe.M15, Timeframe.H1),
        None,
    )
    assert pepper.folder == Path("~/exports").expanduser() and pepper.timeframes == (
        Timeframe.M1,
        Timeframe.H1,
    )
    assert pepper.offset == OffsetRule.fixed(120) and pepper.threshold_pips == 1.0


def test_no_brokers_file_means_no_brokers(monkeypatch):
    monkeypatch.delenv("MASSIVE_BROKERS", raising=False)
    assert load_brokers(CATALOG) == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{name: icm, folder: /x, symbols: [XAUUSX]}",
            r"entry #1 \('icm'\): field 'symbols': unknown symbol 'XAUUSX'",
        ),
        ("{name: ICM, folder: /x, symbols: [XAUUSD]}", r"entry #1 \('ICM'\): broker name must be"),
        ("{name: icm, symbols: [XAUUSD]}", r"entry #1 \('icm'\): field 'folder' is missing"),
        (
            "{name: icm, folder: /x, symbols: [XAUUSD], offset: '+3:99'}",
            r"entry #1 \('icm'\): field 'offset': offset '\+3:99'",
        ),
        (
            "{name: icm, folder: /x, symbols: [XAUUSD], timeframe: M15}",
            r"entry #1 \('icm'\): field 'timeframe' is unknown",
        ),
    ],
)
def test_mistakes_name_the_entry_and_field(entry, message):
    with pytest.raises(BrokerConfigError, match=rf"^brokers file b.yaml {message}"):
        parse_brokers(f"brokers:\n  - {entry}\n", CATALOG, "b.yaml")
