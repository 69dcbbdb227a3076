"""Reading MT4 and MT5 exports: the format detected, every field kept, bad lines named by number."""

from __future__ import annotations

import pandas as pd
import pytest

from massive_pipeline.broker.exports import BrokerExportError, parse_export, read_export

MT4 = "2025.08.01,00:00,3345.12,3346.00,3344.50,3345.80,123\n2025.08.01,00:15,3345.80,3347.10,3345.00,3346.90,98\n"
MT5 = (
    "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    "2025.08.01\t00:00:00\t3345.12\t3346.00\t3344.50\t3345.80\t123\t0\t15\n"
    "2025.08.01\t00:15\t3345.80\t3347.10\t3345.00\t3346.90\t98\t7\t12\n"
)


def test_mt4_history_center_csv_is_detected_and_read():
    export = parse_export(MT4.encode(), "XAUUSD15.csv")
    assert export.format == "mt4" and export.file_name == "XAUUSD15.csv"
    bars = export.bars
    assert list(bars["server_time"]) == [pd.Timestamp("2025-08-01 00:00"), pd.Timestamp("2025-08-01 00:15")]
    assert bars.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        3345.12,
        3346.0,
        3344.5,
        3345.8,
        123,
    ]
    assert bars["spread"].isna().all() and bars["real_volume"].isna().all()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_mt5_export_is_detected_with_either_time_form_and_the_terminals_encodings(encoding):
    export = parse_export(MT5.encode(encoding), "XAUUSD_M15_202508010000_202508010015.csv")
    assert export.format == "mt5"
    bars = export.bars
    assert list(bars["server_time"]) == [pd.Timestamp("2025-08-01 00:00"), pd.Timestamp("2025-08-01 00:15")]
    assert bars["spread"].tolist() == [15, 12] and bars["real_volume"].tolist() == [0, 7]
    assert bars["close"].tolist() == [3345.8, 3346.9]


def test_the_same_bytes_have_the_same_identity_and_other_bytes_another():
    assert parse_export(MT4.encode()).sha256 == parse_export(MT4.encode()).sha256
    assert parse_export(MT4.encode()).sha256 != parse_export(MT4.replace("123", "124").encode()).sha256


def test_every_bad_line_is_collected_and_the_first_are_named_by_number():
    lines = MT4.splitlines()
    text = "\n".join(
        [
            lines[0],
            "2025.08.01,00:15,3345.80,3347.10,3345.00",  # line 2: fields missing
            "2025.08.01,00:30,abc,3347.10,3345.00,3346.90,98",  # line 3: not a number
            "2025.13.01,00:45,3345.80,3347.10,3345.00,3346.90,98",  # line 4: no such month
            "2025.08.01,01:00,3345.80,3340.00,3345.00,3346.90,98",  # line 5: high below close
            "2025.08.01,00:00,3345.80,3347.10,3345.00,3346.90,98",  # line 6: repeats line 1
        ]
    )
    with pytest.raises(BrokerExportError) as info:
        parse_export(text.encode(), "XAUUSD15.csv")
    message = str(info.value)
    assert message.startswith("XAUUSD15.csv: 5 bad line(s) in the MT4 export: line 2: expected 7")
    for number in (3, 4, 5, 6):
        assert f"line {number}: " in message
    assert "'abc' is not a number" in message and "repeats line 1" in message
    assert "\n" not in message


def test_more_bad_lines_than_shown_are_counted():
    good = MT4.splitlines()[0]
    text = "\n".join([good] + [f"2025.08.02,00:{m:02d},x,1,1,1,1" for m in range(8)])
    with pytest.raises(BrokerExportError, match=r"8 bad line\(s\).*line 6: .*\(and 3 more\)$"):
        parse_export(text.encode(), "f.csv")


def test_a_file_in_neither_format_or_missing_is_one_clear_error(tmp_path):
    with pytest.raises(BrokerExportError, match=r"^x.csv: line 1: neither an MT4 .* nor an MT5"):
        parse_export(b"Date,Open,High\n", "x.csv")
    with pytest.raises(BrokerExportError, match=r"MT5 header lacks <TICKVOL>"):
        parse_export(b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\n", "y.csv")
    with pytest.raises(BrokerExportError, match=r"no such file"):
        read_export(tmp_path / "absent.csv")
