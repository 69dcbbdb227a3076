"""The bundled server's kline WebSocket stream, mounted on its Starlette app, on the server's clock.

Serves `/ws/<symbol>@kline_1m` (raw events) and `/stream?streams=a@kline_1m/b@kline_1m` (each
event wrapped as `{"stream": …, "data": …}`), as Binance does. At every minute boundary of the
server's clock it sends each subscribed symbol's kline of the minute that just ended with
`"x": true`, and in the middle of each minute an update of the forming kline with `"x": false`
(partial values: a consumer that stored it would store the wrong bar). A minute the generator
has no bar for sends nothing, as the REST klines route serves nothing for it.

The klines are built with the REST route's own functions (`generate.klines`, `generate.kline_rows`)
from the server's switches and seed at the moment of the close, so the stream and the REST
fallback agree to the decimal string. The server's clock (`BinanceServer(now=…, speed=300)`: one
kline every 0.2 s) decides when a kline closes; every close sent is logged (`closes`) with the
real instant it left, which is what a latency test measures against. `BinanceServer.stop()` closes
every stream connection (registered with `on_stop`) before the HTTP server goes, and `start()`
serves the stream again on the same port.

    stream = KlineStream()
    with BinanceServer(now="2026-03-02T12:00:00Z", speed=300, extensions=[stream.mount]) as srv:
        os.environ["BINANCE_WS_URL"] = srv.url.replace("http://", "ws://")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.websockets import WebSocket, WebSocketDisconnect

from massive_pipeline.testing.binance_server.generate import instrument_for, kline_rows, klines

if TYPE_CHECKING:
    from massive_pipeline.testing.binance_server.server import BinanceServer

MINUTE_MS = 60_000
INTERVAL = "1m"
# Longest real wait between two looks at the clock: the clock may be frozen (speed 0) or moved
# by `POST /_dev/now`, so a wait computed from it is re-checked at least this often.
_MAX_WAIT_S = 0.5
_GOING_AWAY = 1001
_POLICY_VIOLATION = 1008


@dataclass(frozen=True)
class KlineValues:
    """One minute's kline as Binance's decimal strings (o, h, l, c, v, q) and trade count."""

    o: str
    h: str
    l: str  # noqa: E741 - Binance's own field name
    c: str
    v: str
    q: str
    n: int


@dataclass(frozen=True)
class SentClose:
    """A closed kline the stream sent: symbol, its open time, and when (real, `time.monotonic`)."""

    symbol: str
    open_ms: int
    sent_monotonic: float


class StreamPathError(ValueError):
    pass


def subscribed(path: str, query: str = "") -> tuple[list[str], bool]:
    """(Binance symbols, combined?) of a stream request; `StreamPathError` for anything else."""
    if path.startswith("/ws/") and path.count("/") == 2:
        names, combined = [path[len("/ws/"):]], False
    elif path == "/stream":
        names, combined = "".join(parse_qs(query).get("streams", [])).split("/"), True
    else:
        raise StreamPathError(f"unknown stream path {path!r}")
    symbols = []
    for name in names:
        symbol, _, kind = name.partition("@")
        if kind != f"kline_{INTERVAL}" or not symbol.isalnum():
            raise StreamPathError(f"unknown stream {name!r} (this server serves <symbol>@kline_{INTERVAL})")
        symbols.append(symbol.upper())
    return symbols, combined


def kline_event(symbol: str, open_ms: int, values: KlineValues, *, closed: bool, event_ms: int) -> dict:
    """The event Binance sends for one kline."""
    return {
        "e": "kline", "E": event_ms, "s": symbol,
        "k": {
            "t": open_ms, "T": open_ms + MINUTE_MS - 1, "s": symbol, "i": INTERVAL, "f": 0, "L": max(values.n - 1, 0),
            "o": values.o, "c": values.c, "h": values.h, "l": values.l, "v": values.v, "n": values.n,
            "x": closed, "q": values.q, "V": "0", "Q": "0", "B": "0",
        },
    }


def forming(values: KlineValues) -> KlineValues:
    """The kline as it stands early in its minute: only the open has traded."""
    zero = "0.00000000"
    return KlineValues(values.o, values.o, values.o, values.o, zero, zero, 0)


def generated_kline(server: BinanceServer, symbol: str, open_ms: int) -> KlineValues | None:
    """The minute's kline exactly as `GET /api/v3/klines` serves it once closed, or None."""
    switches = server.switches_now()
    inst = instrument_for(symbol, switches)
    if inst is None:
        return None
    bars = klines(inst, INTERVAL, open_ms, open_ms, 1, open_ms + MINUTE_MS, switches, server.seed)
    if not len(bars) or int(bars.t[0]) != open_ms:
        return None
    row = kline_rows(bars, INTERVAL, switches)[0]
    return KlineValues(o=row[1], h=row[2], l=row[3], c=row[4], v=row[5], q=row[7], n=row[8])  # type: ignore[arg-type]


class KlineStream:
    """The stream routes and their log; `mount` is the `BinanceServer` extension that adds them."""

    def __init__(self, *, open_updates: bool = True) -> None:
        self.open_updates = open_updates
        self.closes: list[SentClose] = []
        self.connections = 0
        self._lock = threading.Condition()
        self._live: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._server: BinanceServer | None = None

    def mount(self, server: BinanceServer) -> None:
        self._server = server
        # Starlette 1 keeps `add_websocket_route` on the router only (the package docstring's
        # `server.app.add_websocket_route` is Starlette 0.x's spelling of the same call)
        server.app.router.add_websocket_route("/ws/{stream}", self._endpoint)
        server.app.router.add_websocket_route("/stream", self._endpoint)
        server.on_stop(self.close_all)

    def close_all(self, timeout: float = 5.0) -> None:
        """Close every open stream connection (going away), as an exchange restart does, and wait
        until each has sent its close frame: what was sent before it reaches the client."""
        with self._lock:
            live = list(self._live)
        for loop, closing in live:
            with contextlib.suppress(RuntimeError):  # that loop has already ended
                loop.call_soon_threadsafe(closing.set)
        with self._lock:
            self._lock.wait_for(lambda: not self._live, timeout)

    def closes_of(self, symbol: str) -> list[SentClose]:
        with self._lock:
            return [c for c in self.closes if c.symbol == symbol]

    async def _wait_for_clock(self, server_ms: int, closing: asyncio.Event) -> bool:
        """Wait until the server's clock reads `server_ms`; False when the connection is closing first."""
        assert self._server is not None
        while not closing.is_set():
            delay = self._server.clock.wall_seconds_until(server_ms)
            if delay <= 0:
                return True
            try:
                await asyncio.wait_for(closing.wait(), min(delay, _MAX_WAIT_S))
            except TimeoutError:
                continue
        return False

    async def _send(self, ws: WebSocket, symbols: list[str], combined: bool, open_ms: int, *, closed: bool) -> None:
        assert self._server is not None
        for symbol in symbols:
            # off the event loop: a day's first bar generates the whole day (the REST route's cache)
            values = await asyncio.to_thread(generated_kline, self._server, symbol, open_ms)
            if values is None:
                continue
            event = kline_event(symbol, open_ms, values if closed else forming(values), closed=closed,
                                event_ms=self._server.clock.now_ms())
            if combined:
                event = {"stream": f"{symbol.lower()}@kline_{INTERVAL}", "data": event}
            await ws.send_text(json.dumps(event, separators=(",", ":")))
            if closed:
                with self._lock:
                    self.closes.append(SentClose(symbol, open_ms, time.monotonic()))

    async def _endpoint(self, ws: WebSocket) -> None:
        assert self._server is not None
        try:
            symbols, combined = subscribed(ws.url.path, ws.url.query)
        except StreamPathError:
            await ws.close(code=_POLICY_VIOLATION)  # before accept: the handshake is refused (HTTP 403)
            return
        await ws.accept()
        closing = asyncio.Event()
        entry = (asyncio.get_running_loop(), closing)
        with self._lock:
            self.connections += 1
            self._live.add(entry)
        try:
            minute = self._server.clock.now_ms() // MINUTE_MS * MINUTE_MS
            while True:
                half = minute + MINUTE_MS // 2
                if self.open_updates and self._server.clock.now_ms() < half:
                    if not await self._wait_for_clock(half, closing):
                        break
                    await self._send(ws, symbols, combined, minute, closed=False)
                if not await self._wait_for_clock(minute + MINUTE_MS, closing):
                    break
                await self._send(ws, symbols, combined, minute, closed=True)
                minute += MINUTE_MS
            await ws.close(code=_GOING_AWAY)
        except (WebSocketDisconnect, RuntimeError):  # the client left (RuntimeError: send after close)
            pass
        finally:
            with self._lock:
                self._live.discard(entry)
                self._lock.notify_all()


def mount(server: BinanceServer) -> None:
    """The extension the package docstring names: a stream with open updates on `server`."""
    KlineStream().mount(server)
