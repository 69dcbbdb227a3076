"""The writer: a closed kline becomes one stored bar beside the stored history, never instead of it."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from massive_pipeline.store import CandleStore
from massive_pipeline.stream.events import Kline
from massive_pipeline.stream.status import StreamReporter
from massive_pipeline.stream.writer import SOURCE, KlineSkipped, KlineWriter

NOON = pd.Timestamp("2026-03-02 12:00", tz="UTC")
NOON_MS = NOON.value // 1_000_000


def kline(minute: int = 0, *, closed: bool = True, close: float = 100.5, high: float = 101.0,
          interval: str = "1m", symbol: str = "BTCUSDT") -> Kline:
    open_ms = NOON_MS + minute * 60_000
    return Kline(symbol=symbol, interval=interval, open_ms=open_ms, close_ms=open_ms + 59_999,
                 event_ms=open_ms + 60_000, open=100.0, high=high, low=99.5, close=close, volume=2.0,
                 quote_volume=201.0, trades=7, closed=closed)


def bars(*minutes: int) -> pd.DataFrame:
    ts = pd.DatetimeIndex([NOON + pd.Timedelta(minutes=m) for m in minutes])
    n = len(ts)
    return pd.DataFrame({"ts": ts, "open": [50.0] * n, "high": [51.0] * n, "low": [49.0] * n,
                         "close": [50.5] * n, "volume": [1.0] * n})


@pytest.fixture
def store(database_url: str) -> Iterator[CandleStore]:
    with CandleStore(database_url) as s:
        s.create_schema()
        yield s


def writer(store: CandleStore) -> KlineWriter:
    return KlineWriter(store, {"BTCUSDT": "BTCUSDT"}, now=lambda: NOON + pd.Timedelta(hours=1))


def test_a_closed_kline_is_stored_complete_and_keeps_every_neighbour(store: CandleStore):
    store.write_window("BTCUSDT", "M1", NOON - pd.Timedelta(minutes=1), NOON + pd.Timedelta(minutes=3),
                       bars(-1, 1, 2), source="binance")
    written = writer(store).write(kline(0))
    assert written.result is not None and written.result.rows_new == 1 and written.result.rows_removed == 0
    stored = store.read("BTCUSDT", "M1")
    assert list(stored["ts"]) == [NOON + pd.Timedelta(minutes=m) for m in (-1, 0, 1, 2)]
    row = stored[stored["ts"] == NOON].iloc[0]
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"], row["trades"]) == (
        100.0, 101.0, 99.5, 100.5, 2.0, 7)
    assert row["vwap"] == pytest.approx(100.5) and bool(row["complete"]) and row["source"] == SOURCE
    assert stored[stored["ts"] != NOON]["close"].tolist() == [50.5, 50.5, 50.5]


def test_the_same_kline_twice_is_one_bar_and_no_revision(store: CandleStore):
    w = writer(store)
    w.write(kline(0))
    again = w.write(kline(0))
    assert again.result is not None and again.result.rows_unchanged == 1 and again.result.rows_revised == 0
    assert store.count("BTCUSDT", "M1") == 1 and store.revisions().empty


def test_a_stream_bar_that_differs_from_the_stored_one_replaces_it_as_a_revision(store: CandleStore):
    store.write_window("BTCUSDT", "M1", NOON, NOON + pd.Timedelta(minutes=1), bars(0), source="binance",
                       now=NOON + pd.Timedelta(hours=1))
    writer(store).write(kline(0, close=100.75))
    assert store.read("BTCUSDT", "M1")["close"].tolist() == [100.75]
    assert len(store.revisions()) == 1


@pytest.mark.parametrize(("bad", "says"), [
    (kline(0, closed=False), "is still open"),
    (kline(0, interval="5m"), "interval '5m'"),
    (kline(0, symbol="ETHUSDT"), "ETHUSDT is not one of the streamed symbols"),
])
def test_open_klines_other_intervals_and_other_symbols_are_not_written(store: CandleStore, bad: Kline, says: str):
    with pytest.raises(KlineSkipped, match=says):
        writer(store).write(bad)
    assert store.count("BTCUSDT", "M1") == 0


def test_an_impossible_kline_goes_to_the_rejects_not_the_candles(store: CandleStore):
    written = writer(store).write(kline(0, high=99.0))  # high below open and close
    assert written.result is None and written.rejected == 1
    assert store.count("BTCUSDT", "M1") == 0
    rejected = store.rejected("BTCUSDT", "M1")
    assert len(rejected) == 1 and "high" in rejected["reason"].iloc[0]


def test_the_reporter_records_running_ok_and_error_in_sync_status(store: CandleStore):
    reporter = StreamReporter(store, ["BTCUSDT"])
    reporter.connected("ws://user:secret@127.0.0.1:9443/ws/btcusdt@kline_1m?x=1")
    row = store.sync_status().iloc[0]
    assert (row["symbol"], row["timeframe"], row["status"]) == ("BTCUSDT", "M1", "running")
    writer(store).write(kline(0))
    writer(store).write(kline(1))
    reporter.written("BTCUSDT")
    row = store.sync_status().iloc[0]
    assert (row["status"], row["rows"], row["last_bar_ts"]) == ("ok", 2, NOON + pd.Timedelta(minutes=1))
    reporter.disconnected("ws://user:secret@127.0.0.1:9443/ws/btcusdt@kline_1m", "connection refused", 3, 2.14)
    row = store.sync_status().iloc[0]
    assert row["status"] == "error" and row["rows"] == 2
    assert row["error"] == ("stream: no connection to ws://127.0.0.1:9443/ws/btcusdt@kline_1m (connection refused); "
                            "reconnect 3 in 2.1 s")
    assert "secret" not in row["error"]
