"""The bundled Binance-compatible server: prices that follow the Massive server, weight, switches, restart."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from massive_pipeline.binance import USED_WEIGHT_HEADER
from massive_pipeline.testing.binance_server import BinanceServer, ServerClock, SwitchError
from massive_pipeline.testing.devserver import DevServer

START_MS = 1774915200000 - 86_400_000  # 2026-03-30 00:00 UTC


def _klines(server: BinanceServer, **params: object) -> httpx.Response:
    query = {"symbol": "BTCUSDT", "interval": "1m", "startTime": START_MS, "limit": 100, **params}
    return httpx.get(f"{server.url}/api/v3/klines", params={k: str(v) for k, v in query.items()})


def _massive_closes(start_ms: int, minutes: int) -> dict[int, float]:
    with DevServer(now="2026-04-01T00:00:00Z") as massive:
        body = httpx.get(f"{massive.url}/v2/aggs/ticker/X:BTCUSD/range/1/minute/{start_ms}/"
                         f"{start_ms + minutes * 60_000 - 1}", headers={"Authorization": "Bearer k"}).json()
    return {row["t"]: row["c"] for row in body["results"]}


def test_klines_follow_the_massive_ticker_times_the_basis_with_divergent_bars(binance_server: BinanceServer) -> None:
    massive = _massive_closes(START_MS, 100)
    divergent = sorted(massive)[10:13]
    binance_server.set_switches(basis=1.0005, divergent_bars=divergent, divergence=0.02)
    rows = _klines(binance_server).json()
    assert [r[0] for r in rows] == sorted(massive)  # the same minutes present
    ratio = np.array([float(r[4]) / massive[r[0]] for r in rows])
    off = {r[0] for r, q in zip(rows, ratio, strict=True) if abs(q - 1.0005) > 1e-6}
    assert off == set(divergent)
    assert ratio[[i for i, r in enumerate(rows) if r[0] in divergent]] == pytest.approx(1.0005 * 1.02, rel=1e-6)
    assert all(r[6] == r[0] + 59_999 for r in rows)


def test_weight_is_counted_per_minute_and_a_limit_is_enforced() -> None:
    with BinanceServer(now="2026-03-31T12:00:10Z", speed=0, weight_limit=6) as srv:
        assert _klines(srv, limit=1000).headers[USED_WEIGHT_HEADER] == "5"
        assert _klines(srv, limit=100).headers[USED_WEIGHT_HEADER] == "6"
        refused = _klines(srv, limit=100)
        assert refused.status_code == 429 and refused.json()["code"] == -1003
        assert refused.headers["Retry-After"] == "60"  # a frozen clock never reaches the next minute: a minute
        srv.clock.set("2026-03-31T12:01:00Z", speed=0)  # a new minute starts at zero
        assert _klines(srv, limit=101).headers[USED_WEIGHT_HEADER] == "2"
        assert srv.weights.max_used() == 6
        assert [r.status for r in srv.kline_requests()] == [200, 200, 429, 200]


def test_bad_parameters_answer_like_binance(binance_server: BinanceServer) -> None:
    assert _klines(binance_server, interval="2m").json() == {"code": -1120, "msg": "Invalid interval."}
    assert _klines(binance_server, limit=1001).json()["code"] == -1130
    assert _klines(binance_server, symbol="btc-usdt").json()["code"] == -1102


def test_switches_are_validated_over_http(binance_server: BinanceServer) -> None:
    answer = httpx.post(f"{binance_server.url}/_dev/switches", json={"basis": -1})
    assert answer.status_code == 400 and "basis must be positive" in answer.json()["error"]
    assert httpx.post(f"{binance_server.url}/_dev/switches", json={"ban_418_next": 1}).json()["ban_418_next"] == 1
    assert _klines(binance_server).status_code == 418
    with pytest.raises(SwitchError, match="unknown switch 'nope'"):
        binance_server.set_switches(nope=1)


def test_a_stopped_server_serves_again_on_the_same_port(binance_server: BinanceServer) -> None:
    port = binance_server.port
    binance_server.stop()
    with pytest.raises(httpx.ConnectError):
        _klines(binance_server)
    binance_server.start()
    assert binance_server.port == port and _klines(binance_server).status_code == 200


def test_the_clock_runs_faster_when_asked() -> None:
    wall = [1000.0]
    clock = ServerClock("2026-03-31T12:00:00Z", speed=60, wall=lambda: wall[0])
    wall[0] += 2  # two real seconds are two minutes
    assert clock.now().isoformat() == "2026-03-31T12:02:00+00:00"
    assert clock.wall_seconds_until(clock.now_ms() + 60_000) == 1.0


def test_extensions_run_once_before_serving() -> None:
    seen: list[int] = []
    srv = BinanceServer(now="2026-03-31T12:00:00Z", speed=0, extensions=[lambda s: seen.append(len(s.app.routes))])
    with srv:
        pass
    with srv:
        pass
    assert seen == [4]
