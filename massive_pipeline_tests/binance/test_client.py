"""The Binance klines client against the bundled Binance-compatible server.

Retries never really wait: the client gets a recording `sleep`, and the tests assert the waits it
asked for. The server's clock is frozen (`binance_server` fixture), so the forming kline is the
same on any day.
"""

from __future__ import annotations

import logging

import httpx
import pandas as pd
import pytest

from massive_pipeline.binance import BinanceClient, BinanceProvider, klines_weight
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive import (
    BarProvider,
    MassiveNotFoundError,
    MassiveRateLimitError,
    MassiveResponseError,
    MassiveServerError,
)
from massive_pipeline.testing.binance_server import BinanceServer

DAY = pd.Timestamp("2026-03-30T00:00:00Z")


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RecordingAcquire:
    """Stands in for the limiter's `acquire`: remembers the weight of every attempt."""

    def __init__(self) -> None:
        self.weights: list[int] = []

    def __call__(self, weight: int) -> None:
        self.weights.append(weight)


def _client(server: BinanceServer, **kwargs) -> BinanceClient:
    kwargs.setdefault("sleep", RecordingSleep())
    return BinanceClient(server.url, clock=server.clock.now, **kwargs)


def test_a_day_of_minutes_is_packed_into_the_fewest_requests(binance_server: BinanceServer) -> None:
    acquire = RecordingAcquire()
    with _client(binance_server, acquire=acquire) as client:
        fetched = client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(days=1))
    asked = binance_server.kline_requests()
    bars = len(fetched.bars)
    assert 1400 < bars <= 1440  # a few thin-hour minutes are missing, as on the Massive server
    assert fetched.requests == len(asked) == -(-bars // 1000) == 2
    # the cursor of page 2 is one minute after page 1's last kline; page 2 asks only for what is left
    first_last = int(fetched.bars["ts"].iloc[999].value // 1_000_000)
    assert asked[1].start_time == first_last + 60_000
    assert [r.limit for r in asked] == [1000, -(-(int((DAY + pd.Timedelta(days=1)).value // 1_000_000)
                                                  - asked[1].start_time) // 60_000)]
    assert fetched.bars["ts"].is_unique and fetched.bars["ts"].is_monotonic_increasing
    assert fetched.bars["ts"].min() >= DAY and fetched.bars["ts"].max() < DAY + pd.Timedelta(days=1)
    # every attempt took its weight from the limiter, and the server counted the same weight
    assert acquire.weights == [klines_weight(r.limit) for r in asked] == [r.weight for r in asked]
    assert fetched.weight == sum(acquire.weights)
    assert fetched.used_weight_1m == asked[-1].used_weight == sum(acquire.weights)
    assert fetched.forming == 0


def test_prices_are_strings_turned_into_floats_with_the_open_time_as_ts(binance_server: BinanceServer) -> None:
    start = pd.Timestamp("2026-03-31T10:00:00Z")
    with _client(binance_server) as client:
        fetched = client.get_klines("BTCUSDT", "1h", start, start + pd.Timedelta(hours=1))
    row = fetched.bars.iloc[0]
    raw = httpx.get(f"{binance_server.url}/api/v3/klines",
                    params={"symbol": "BTCUSDT", "interval": "1h", "startTime": str(start.value // 1_000_000),
                            "limit": "1"}).json()[0]
    assert row["ts"] == start == pd.Timestamp(raw[0], unit="ms", tz="UTC")
    assert isinstance(raw[1], str) and row["open"] == float(raw[1]) and row["close"] == float(raw[4])
    assert row["volume"] == float(raw[5]) and row["trades"] == raw[8]
    assert row["vwap"] == pytest.approx(float(raw[7]) / float(raw[5]))
    assert row["low"] <= min(row["open"], row["close"]) <= max(row["open"], row["close"]) <= row["high"]


def test_the_still_open_kline_is_counted_as_forming(binance_server: BinanceServer) -> None:
    now = binance_server.clock.now()
    with _client(binance_server) as client:
        fetched = client.get_klines("BTCUSDT", "1m", now.floor("h"), now.ceil("h"))
    assert fetched.bars["ts"].max() == now.floor("min")  # nothing after the server's now
    assert fetched.forming == 1 and fetched.forming_ts == [now.floor("min").isoformat()]
    binance_server.clock.set(now + pd.Timedelta(minutes=1), speed=0)
    with _client(binance_server) as client:
        later = client.get_klines("BTCUSDT", "1m", now.floor("h"), now.floor("min") + pd.Timedelta(minutes=1))
    assert later.forming == 0


@pytest.mark.parametrize("status,switch", [(429, "throttle_429_next"), (418, "ban_418_next")])
def test_429_and_418_wait_their_retry_after(binance_server: BinanceServer, status: int, switch: str) -> None:
    binance_server.set_switches(**{switch: 2, "retry_after_seconds": 7})
    sleep, acquire = RecordingSleep(), RecordingAcquire()
    with _client(binance_server, sleep=sleep, acquire=acquire) as client:
        fetched = client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))
        stats = client.stats
    assert sleep.waits == [7.0, 7.0]
    assert [r.status for r in binance_server.kline_requests()] == [status, status, 200]
    assert len(acquire.weights) == 3  # each retry took its weight again
    assert fetched.requests == 3 and len(fetched.bars) == 30
    assert (stats.throttled_429, stats.banned_418) == ((2, 0) if status == 429 else (0, 2))


def test_a_ban_longer_than_allowed_stops_at_once_with_one_line(binance_server: BinanceServer) -> None:
    binance_server.set_switches(ban_418_next=1, retry_after_seconds=7200)
    sleep = RecordingSleep()
    with _client(binance_server, sleep=sleep, max_retry_after=300) as client, \
            pytest.raises(MassiveRateLimitError) as info:
        client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))
    assert sleep.waits == []
    text = str(info.value)
    assert "\n" not in text and "418" in text and "7200s" in text and "BTCUSDT" in text


def test_a_malformed_row_fails_with_one_line_naming_the_symbol(binance_server: BinanceServer) -> None:
    binance_server.set_switches(bad_row_next=1)
    with _client(binance_server) as client, pytest.raises(MassiveResponseError) as info:
        client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))
    text = str(info.value)
    assert "\n" not in text
    assert text == ("Binance API answered GET /api/v3/klines BTCUSDT 1m for BTCUSDT with an unexpected shape: "
                    "kline 0 has close 'abc', not a decimal string")


def test_a_truncated_body_is_retried_then_served(binance_server: BinanceServer) -> None:
    binance_server.set_switches(malformed_next=1)
    with _client(binance_server) as client:
        fetched = client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))
    assert len(fetched.bars) == 30 and fetched.requests == 2


def test_server_errors_back_off_then_give_up(binance_server: BinanceServer) -> None:
    binance_server.set_switches(server_errors_next=10)
    sleep = RecordingSleep()
    with _client(binance_server, sleep=sleep, max_retries=2, jitter=0) as client, \
            pytest.raises(MassiveServerError, match="503"):
        client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))
    assert sleep.waits == [0.5, 1.0]


def test_an_unknown_symbol_is_not_found(binance_server: BinanceServer) -> None:
    binance_server.set_switches(follow={"NOSUCHUSDT": "not-a-ticker"})
    with _client(binance_server) as client, pytest.raises(MassiveNotFoundError, match="NOSUCHUSDT.*Invalid symbol"):
        client.get_klines("NOSUCHUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=30))


def test_the_used_weight_header_is_logged(binance_server: BinanceServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="massive_pipeline.binance.client"), _client(binance_server) as client:
        client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=150))
        client.get_klines("BTCUSDT", "1m", DAY, DAY + pd.Timedelta(minutes=50))
    assert client.stats.used_weight_1m == klines_weight(150) + klines_weight(50) == 3
    assert caplog.messages[-1] == ("GET /api/v3/klines BTCUSDT 1m: 50 klines in 1 request(s), weight 1, "
                                   "server used weight 3 this minute")


def test_the_provider_maps_timeframes_to_intervals(binance_server: BinanceServer) -> None:
    with _client(binance_server) as client:
        provider = BinanceProvider(client)
        assert isinstance(provider, BarProvider)
        weekly = provider.fetch_bars("BTCUSDT", Timeframe.W1, pd.Timestamp("2026-03-02T00:00:00Z"),
                                     pd.Timestamp("2026-03-30T00:00:00Z"))
        assert list(weekly.bars["ts"].dt.dayofweek) == [0, 0, 0, 0]  # Binance weeks open on Monday 00:00 UTC
        with pytest.raises(ValueError, match="D1_NY has no Binance kline interval"):
            provider.fetch_bars("BTCUSDT", Timeframe.D1_NY, DAY, DAY + pd.Timedelta(days=1))
        assert provider.snapshots(["BTCUSDT"])[0] == []
