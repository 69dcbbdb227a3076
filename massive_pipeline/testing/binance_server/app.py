"""The bundled Binance server's routes, as a Starlette (ASGI) app over a `BinanceServer`.

`GET /api/v3/klines`, `/api/v3/time` and `/api/v3/ping` answer as Binance does (errors as
`{"code": -1121, "msg": "Invalid symbol."}`); admin routes under `/_dev/` are neither logged nor
weighed: `GET /_dev/health`, `GET /_dev/requests`, `GET|POST /_dev/switches`, `POST /_dev/reset`,
`POST /_dev/now` (`{"now": "2026-05-01T12:00:00Z" or null, "speed": 1}`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from massive_pipeline.binance.intervals import INTERVAL_MS
from massive_pipeline.binance.weights import MAX_KLINES, USED_WEIGHT_HEADER, klines_weight
from massive_pipeline.testing.binance_server.accounting import KlineRequest, WeightMeter, retry_after
from massive_pipeline.testing.binance_server.clock import ServerClock
from massive_pipeline.testing.binance_server.generate import instrument_for, kline_rows, klines
from massive_pipeline.testing.binance_server.switches import BinanceSwitches, SwitchError

KLINES = "/api/v3/klines"
DEFAULT_LIMIT = 500
_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class ServerState(Protocol):
    """What the routes read and change on the server (`BinanceServer` is the one implementation).

    A protocol rather than the class itself so that the app does not import the module that
    builds it (no import cycle, the package hygiene test).
    """

    clock: ServerClock
    weights: WeightMeter
    seed: int

    @property
    def url(self) -> str: ...
    @property
    def switches(self) -> BinanceSwitches: ...
    def set_switches(self, **changes: Any) -> BinanceSwitches: ...
    def switches_now(self) -> BinanceSwitches: ...
    def take_switches(self, name: str) -> BinanceSwitches | None: ...
    def take(self, name: str) -> bool: ...
    def reset(self) -> None: ...
    def log(self, record: KlineRequest) -> None: ...
    def requests(self, path: str | None = None) -> list[KlineRequest]: ...


class _BadRequest(Exception):
    def __init__(self, code: int, msg: str) -> None:
        self.code, self.msg = code, msg


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


def _int_param(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.") from None


def build_app(server: ServerState) -> Starlette:
    """The ASGI app; a kline stream mounts on it with `app.add_websocket_route` (package docstring)."""

    async def klines_route(request: Request) -> Response:
        now = server.clock.now_ms()
        params = request.query_params
        symbol, interval = params.get("symbol"), params.get("interval")
        record = dict(path=KLINES, symbol=symbol, interval=interval, start_time=None, end_time=None, limit=None)
        try:
            if not symbol or not set(symbol) <= _SYMBOL_CHARS:
                raise _BadRequest(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
            if interval not in INTERVAL_MS:
                raise _BadRequest(-1120, "Invalid interval.")
            start, end, limit = (_int_param(params, n) for n in ("startTime", "endTime", "limit"))
            record.update(start_time=start, end_time=end, limit=limit)
            limit = DEFAULT_LIMIT if limit is None else limit
            if not 1 <= limit <= MAX_KLINES:
                raise _BadRequest(-1130, "Data sent for parameter 'limit' is not valid.")
            inst = instrument_for(symbol, server.switches)
            if inst is None:
                raise _BadRequest(-1121, "Invalid symbol.")
        except _BadRequest as exc:
            used = server.weights.used(now)
            server.log(KlineRequest(now, **record, weight=0, status=400, used_weight=used, klines=0))
            return _error(400, exc.code, exc.msg, {USED_WEIGHT_HEADER: str(used)})
        weight = klines_weight(limit)
        response = _refusal(server, now)
        if response is None:
            admitted, used = server.weights.charge(weight, now)
            if not admitted:
                wait = server.clock.wall_seconds_until((now // 60_000 + 1) * 60_000)
                response = _error(429, -1003, "Too much request weight used; current limit is "
                                  f"{server.weights.limit} request weight per 1 MINUTE.",
                                  {"Retry-After": retry_after(wait)})
        if response is not None:
            used = server.weights.used(now)
            response.headers[USED_WEIGHT_HEADER] = str(used)
            server.log(KlineRequest(now, **record, weight=0, status=response.status_code, used_weight=used, klines=0))
            return response
        last = now if end is None else end
        first = start if start is not None else last - limit * INTERVAL_MS[interval] + 1
        bars = klines(inst, interval, first, last, limit, now, server.switches_now(), server.seed)
        rows = kline_rows(bars, interval, server.switches_now())
        headers = {USED_WEIGHT_HEADER: str(used), "X-MBX-USED-WEIGHT": str(used)}
        server.log(KlineRequest(now, **record, weight=weight, status=200, used_weight=used, klines=len(rows)))
        if server.take("server_errors_next"):
            return _error(503, -1001, "Internal error; unable to process your request. Please try again.", headers)
        body = json.dumps(rows, separators=(",", ":")).encode()
        if server.take("malformed_next"):
            body = body[: max(1, len(body) // 2)]
        elif rows and server.take("bad_row_next"):
            rows[0][4] = "abc"
            body = json.dumps(rows, separators=(",", ":")).encode()
        return Response(body, media_type="application/json", headers=headers)

    async def time_route(request: Request) -> Response:
        return JSONResponse({"serverTime": server.clock.now_ms()})

    async def ping_route(request: Request) -> Response:
        return JSONResponse({})

    async def admin(request: Request) -> Response:
        try:
            return await _admin(server, request)
        except (SwitchError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return Starlette(routes=[
        Route(KLINES, klines_route),
        Route("/api/v3/time", time_route),
        Route("/api/v3/ping", ping_route),
        Route("/_dev/{name}", admin, methods=["GET", "POST"]),
    ])


def _refusal(server: ServerState, now_ms: int) -> Response | None:
    """A 418 or 429 when a switch asks for one, with `Retry-After` unless switched off."""
    for name, status, code, msg in (
        ("ban_418_next", 418, -1003, "Way too much request weight used; IP banned until later."),
        ("throttle_429_next", 429, -1003, "Too much request weight used; please use WebSocket Streams."),
    ):
        switches = server.take_switches(name)
        if switches is not None:
            headers = {"Retry-After": str(switches.retry_after_seconds)} if switches.send_retry_after else None
            return _error(status, code, msg, headers)
    return None


async def _admin(server: ServerState, request: Request) -> Response:
    name, method = request.path_params["name"], request.method
    if (method, name) == ("GET", "health"):
        return JSONResponse({"status": "OK", "url": server.url, "now": server.clock.now().isoformat(),
                             "speed": server.clock.speed})
    if (method, name) == ("GET", "requests"):
        return JSONResponse([r.to_dict() for r in server.requests()])
    if (method, name) == ("GET", "switches"):
        return JSONResponse(server.switches_now().to_dict())
    payload = await request.json() if await request.body() else {}
    if not isinstance(payload, dict):
        raise ValueError("request body must be a JSON object")
    if (method, name) == ("POST", "switches"):
        return JSONResponse(server.set_switches(**payload).to_dict())
    if (method, name) == ("POST", "reset"):
        server.reset()
        return JSONResponse({"status": "OK"})
    if (method, name) == ("POST", "now"):
        server.clock.set(payload.get("now"), payload.get("speed", 1.0))
        return JSONResponse({"now": server.clock.now().isoformat(), "speed": server.clock.speed})
    return JSONResponse({"error": f"no admin route {method} /_dev/{name}"}, status_code=404)
