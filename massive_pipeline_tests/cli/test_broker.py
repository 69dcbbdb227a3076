"""`massive-pipeline broker compare`: prints and records the comparison; bad input is one line, exit 2."""

from __future__ import annotations

import pytest

from massive_pipeline.broker.offset import OffsetRule
from massive_pipeline.cli import main
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store import CandleStore
from massive_pipeline_tests.broker.broker_files import broker_bars, mt4_text, store_server_bars, write_export


@pytest.fixture
def stored(pipeline_env, monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/candles.sqlite"
    monkeypatch.setenv("MASSIVE_DATABASE_URL", url)
    store = CandleStore(url)
    bars = store_server_bars(
        pipeline_env, store, "C:XAUUSD", "XAUUSD", Timeframe.M15, "2025-06-02", "2025-06-14"
    )
    yield store, bars
    store.dispose()


def test_compare_prints_the_result_and_stores_it(stored, tmp_path, capsys):
    store, bars = stored
    path = write_export(tmp_path, "XAUUSD15.csv", mt4_text(broker_bars(bars, OffsetRule.fixed(180), 0.35), 2))
    args = [
        "broker",
        "compare",
        "--broker",
        "demo",
        "--symbol",
        "xauusd",
        "--timeframe",
        "M15",
        "--file",
        str(path),
    ]
    assert main([*args, "--offset", "+03:00"]) == 0
    out = capsys.readouterr().out
    assert "server time offset: fixed UTC+03:00, stated" in out
    assert f"bars compared: {len(bars)} of {len(bars)}" in out
    assert "recommended offset: +0.350" in out
    row = store.broker_comparisons("demo").iloc[-1]
    assert row["offset_rule"] == "fixed" and row["time_offset_minutes"] == 180
    assert "test-key-123" not in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--symbol": "XAUUSX"}, "unknown symbol 'XAUUSX'"),
        ({"--file": "missing.csv"}, "missing.csv: no such file"),
        ({"--offset": "+3:99"}, "offset '+3:99' is not auto"),
        ({"--broker": "My Broker"}, "broker name must be"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(stored, tmp_path, capsys, change, message):
    options = {
        "--broker": "demo",
        "--symbol": "XAUUSD",
        "--timeframe": "M15",
        "--file": str(tmp_path / "x.csv"),
    }
    (tmp_path / "x.csv").write_text("2025.06.02,00:00,1,1,1,1,1\n")
    options.update({k: (str(tmp_path / v) if k == "--file" else v) for k, v in change.items()})
    code = main(["broker", "compare", *[part for pair in options.items() for part in pair]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_bad_line_in_the_file_is_named_by_its_number(stored, tmp_path, capsys):
    path = write_export(
        tmp_path, "XAUUSD15.csv", "2025.06.02,00:00,3300,3301,3299,3300.5,10\n2025.06.02,00:15,bad\n"
    )
    code = main(
        [
            "broker",
            "compare",
            "--broker",
            "demo",
            "--symbol",
            "XAUUSD",
            "--timeframe",
            "M15",
            "--file",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "1 bad line(s) in the MT4 export: line 2: expected 7" in err
