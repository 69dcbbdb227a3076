"""The bundled kline WebSocket stream: Binance's paths and event shape, the forming and the closed
kline on the server's clock, the same bars as the REST route, refusal of unknown streams, and a
restart on the same port."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from massive_pipeline.stream.events import parse_event
from massive_pipeline.testing.binance_server import BinanceServer
from massive_pipeline.testing.binance_server.stream import KlineStream, StreamPathError, subscribed
from massive_pipeline.testing.devserver.instruments import resolve_instrument
from massive_pipeline.testing.devserver.prices import minute_bars

NOON = pd.Timestamp("2026-03-02 12:00", tz="UTC")
NOON_MS = NOON.value // 1_000_000


def ws_url(server: BinanceServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


@pytest.fixture
def stream() -> KlineStream:
    return KlineStream()


def serving(stream: KlineStream, now: pd.Timestamp, speed: float) -> BinanceServer:
    return BinanceServer(now=now, speed=speed, extensions=[stream.mount])


@pytest.fixture
def fast(stream: KlineStream) -> Iterator[BinanceServer]:
    """A kline a second, starting ten seconds into 12:00."""
    with serving(stream, NOON + pd.Timedelta(seconds=10), 60) as server:
        yield server


def test_stream_paths_are_binances():
    assert subscribed("/ws/btcusdt@kline_1m") == (["BTCUSDT"], False)
    assert subscribed("/stream", "streams=btcusdt@kline_1m/ethusdt@kline_1m") == (["BTCUSDT", "ETHUSDT"], True)
    for path, query in (("/ws/btcusdt@trade", ""), ("/other", ""), ("/ws/a/b", ""),
                        ("/stream", "streams=btc-usdt@kline_1m")):
        with pytest.raises(StreamPathError):
            subscribed(path, query)


def test_the_forming_kline_then_the_closed_one_which_is_the_rest_routes_bar(fast: BinanceServer, stream: KlineStream):
    with connect(ws_url(fast, "/ws/btcusdt@kline_1m"), open_timeout=5) as ws:
        forming, closed, nxt = (parse_event(ws.recv(timeout=5)) for _ in range(3))
    assert forming is not None and not forming.closed and forming.open_ms == NOON_MS
    assert forming.close == forming.open and forming.volume == 0  # only the open has traded
    assert closed is not None and closed.closed and (closed.open_ms, closed.close_ms) == (NOON_MS, NOON_MS + 59_999)
    assert closed.event_ms >= closed.close_ms  # sent once the server's clock passed the close
    assert nxt is not None and not nxt.closed and nxt.open_ms == NOON_MS + 60_000
    row = httpx.get(f"{fast.url}/api/v3/klines", params={
        "symbol": "BTCUSDT", "interval": "1m", "startTime": NOON_MS, "limit": 1}).json()[0]
    assert (closed.open, closed.high, closed.low, closed.close, closed.volume, closed.quote_volume, closed.trades) == (
        float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]), float(row[7]), row[8])
    assert [c.open_ms for c in stream.closes_of("BTCUSDT")][:1] == [NOON_MS]


def test_the_stream_follows_the_servers_switches(fast: BinanceServer):
    fast.set_switches(basis=1.5)
    with connect(ws_url(fast, "/ws/btcusdt@kline_1m"), open_timeout=5) as ws:
        closed = next(k for k in (parse_event(ws.recv(timeout=5)) for _ in range(3)) if k is not None and k.closed)
    row = httpx.get(f"{fast.url}/api/v3/klines", params={
        "symbol": "BTCUSDT", "interval": "1m", "startTime": closed.open_ms, "limit": 1}).json()[0]
    assert closed.close == float(row[4])


def test_a_combined_stream_wraps_events_and_a_minute_without_a_bar_sends_nothing():
    # the generator drops ~1% of crypto minutes before 06:00 UTC: find the first such minute of the day
    day_ms = NOON_MS - 12 * 3_600_000
    present = set(minute_bars(resolve_instrument("X:BTCUSD"), day_ms, day_ms + 6 * 3_600_000).t.tolist())
    missing = next(m for m in range(day_ms, day_ms + 6 * 3_600_000, 60_000) if m not in present)
    stream = KlineStream(open_updates=False)
    start = pd.Timestamp(missing - 2 * 60_000 + 1_000, unit="ms", tz="UTC")
    with serving(stream, start, 300) as server, \
            connect(ws_url(server, "/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"), open_timeout=5) as ws:
        messages = [json.loads(ws.recv(timeout=5)) for _ in range(7)]
    assert {m["stream"] for m in messages} == {"btcusdt@kline_1m", "ethusdt@kline_1m"}
    btc = [m["data"]["k"]["t"] for m in messages if m["stream"] == "btcusdt@kline_1m"]
    assert btc[:3] == [missing - 120_000, missing - 60_000, missing + 60_000]  # `missing` skipped, as in REST
    assert all(m["data"]["k"]["x"] for m in messages)


def test_an_unknown_stream_is_refused_in_the_handshake(fast: BinanceServer):
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(fast, "/ws/btcusdt@depth"), open_timeout=5)
    assert caught.value.response.status_code == 403


def test_stop_closes_the_stream_and_start_serves_it_again_on_the_same_port(stream: KlineStream):
    server = serving(stream, NOON, 300).start()
    port = server.port
    try:
        with connect(ws_url(server, "/ws/btcusdt@kline_1m"), open_timeout=5) as ws:
            assert parse_event(ws.recv(timeout=5)) is not None
            server.stop()
            with pytest.raises(Exception):  # noqa: B017 - the peer went away, however the library words it
                while True:
                    ws.recv(timeout=5)
        with pytest.raises(OSError):
            connect(f"ws://127.0.0.1:{port}/ws/btcusdt@kline_1m", open_timeout=2)
        server.start()
        assert server.port == port
        with connect(ws_url(server, "/ws/btcusdt@kline_1m"), open_timeout=5) as ws:
            assert parse_event(ws.recv(timeout=5)) is not None
    finally:
        server.stop()
    assert stream.connections == 2
