"""The kline event parser: Binance's shape in, a Kline out, anything malformed refused on one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from massive_pipeline.stream.events import KlineEventError, parse_event

OPEN_MS = 1_764_590_400_000  # 2025-12-01 12:00 UTC


def event(**k_overrides: object) -> dict:
    k = {"t": OPEN_MS, "T": OPEN_MS + 59_999, "s": "BTCUSDT", "i": "1m", "f": 100, "L": 200,
         "o": "60000.01000000", "c": "60010.50000000", "h": "60020.00000000", "l": "59990.00000000",
         "v": "6.50000000", "n": 101, "x": True, "q": "390065.00000000", "V": "0", "Q": "0", "B": "0"}
    k.update(k_overrides)
    return {"e": "kline", "E": OPEN_MS + 60_000, "s": "BTCUSDT", "k": k}


def test_a_closed_kline_is_parsed_with_its_minute_and_exact_values():
    kline = parse_event(json.dumps(event()))
    assert kline is not None and kline.closed and kline.symbol == "BTCUSDT" and kline.interval == "1m"
    assert kline.ts == pd.Timestamp("2025-12-01 12:00", tz="UTC")
    assert kline.end == pd.Timestamp("2025-12-01 12:01", tz="UTC")
    assert (kline.open, kline.high, kline.low, kline.close, kline.volume, kline.trades) == (
        60000.01, 60020.0, 59990.0, 60010.5, 6.5, 101)
    frame = kline.frame()
    assert list(frame.columns) == ["ts", "open", "high", "low", "close", "volume", "vwap", "trades"]
    assert frame["vwap"].iloc[0] == pytest.approx(390065.0 / 6.5)


def test_the_combined_stream_wrapper_is_unwrapped_and_bytes_are_accepted():
    wrapped = {"stream": "btcusdt@kline_1m", "data": event(x=False)}
    kline = parse_event(json.dumps(wrapped).encode())
    assert kline is not None and not kline.closed


def test_answers_and_other_event_types_are_not_klines():
    assert parse_event('{"result": null, "id": 1}') is None
    assert parse_event(json.dumps({"e": "trade", "s": "BTCUSDT"})) is None


@pytest.mark.parametrize(("raw", "names"), [
    ("not json at all", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"s": "BTCUSDT"}', "no event type 'e'"),
    (json.dumps({"e": "kline", "s": "BTCUSDT", "k": []}), "field k is list"),
    (json.dumps(event(o="abc")), "field k.o is 'abc' (not a number)"),
    (json.dumps(event(c=60010.5)), "field k.c is 60010.5 (not a decimal string)"),
    (json.dumps(event(h="NaN")), "field k.h is 'NaN' (not finite)"),
    (json.dumps(event(t="1764590400000")), "field k.t is '1764590400000' (not an integer)"),
    (json.dumps(event(x="true")), "field k.x is 'true' (not true or false)"),
    (json.dumps(event(T=OPEN_MS - 1)), "is before k.t"),
    (json.dumps(event(s="ETHUSDT")), "field s is 'BTCUSDT' but k.s is 'ETHUSDT'"),
    (json.dumps(event(n=None)), "field k.n is None"),
])
def test_a_malformed_event_is_refused_with_one_line_naming_the_field(raw: str, names: str):
    with pytest.raises(KlineEventError) as caught:
        parse_event(raw)
    message = str(caught.value)
    assert message.startswith("malformed kline event: ") and names in message
    assert "\n" not in message and len(message) < 300


def test_a_long_malformed_message_is_shown_shortened():
    with pytest.raises(KlineEventError) as caught:
        parse_event("x" * 5000)
    assert len(str(caught.value)) < 200 and str(caught.value).endswith("…")
