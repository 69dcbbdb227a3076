"""A Binance-compatible HTTP server for the demo and the tests (klines, request weight, 429/418).

What it serves: `GET /api/v3/klines` with Binance's array-of-arrays shape, prices as strings, the
weight of each request counted per minute of its clock and sent back in `X-MBX-USED-WEIGHT-1M`;
`/api/v3/time`; 429 and 418 with `Retry-After` as switches (`switches.py`); prices following a
Massive ticker of the Massive bundled server times a `basis`, with `divergent_bars` on top
(`generate.py`); a clock that is the wall clock, pinned, or faster (`clock.py`).

    with BinanceServer(now="2026-03-01T00:00:00Z", speed=0) as srv:
        os.environ["BINANCE_BASE_URL"] = srv.url
        srv.set_switches(basis=1.0005, divergent_bars=[...])
        srv.kline_requests()          # what the client asked, with weights and statuses

Extending it with a kline WebSocket stream: `server.app` is a Starlette (ASGI) app served by
uvicorn (which speaks WebSocket through the `websockets` package), so a stream is one route on it.
`stream.py` (a module of its own, owned by the stream work) is expected to provide
`mount(server: BinanceServer) -> None`, which calls
`server.app.add_websocket_route("/ws/{stream}", endpoint)` and may register cleanup with
`server.on_stop(...)`; pass it as `BinanceServer(extensions=[mount])` (extensions run once, before
the server first serves). A stream builds its klines with `generate.klines` / `generate.kline_rows`
and `server.clock`, `server.switches_now()` and `server.seed`, so it and the REST answers agree.
"""

from massive_pipeline.testing.binance_server.accounting import KlineRequest, WeightMeter
from massive_pipeline.testing.binance_server.clock import ServerClock
from massive_pipeline.testing.binance_server.server import BinanceServer, serve_forever_cli
from massive_pipeline.testing.binance_server.switches import BinanceSwitches, SwitchError

__all__ = [
    "BinanceServer",
    "BinanceSwitches",
    "KlineRequest",
    "ServerClock",
    "SwitchError",
    "WeightMeter",
    "serve_forever_cli",
]
