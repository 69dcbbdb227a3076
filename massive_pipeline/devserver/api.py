"""Massive's API endpoints over the generated bars: what to answer, independent of the HTTP plumbing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from massive_pipeline.devserver import aggs, snapshots
from massive_pipeline.devserver.bars import Bars, aggregate
from massive_pipeline.devserver.faults import FaultConfig
from massive_pipeline.devserver.instruments import Instrument, catalog_tickers, resolve_instrument
from massive_pipeline.devserver.prices import HashStreams, minute_bars

V3_DEFAULT_LIMIT = 10
V3_MAX_TICKERS = 250
_V2_SNAPSHOT_PREFIX = "/v2/snapshot/locale/global/markets/"
_V2_MARKET_PREFIX = {"forex": "C:", "crypto": "X:"}


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode())


def error(status: int, message: str, *, status_text: str = "ERROR") -> Response:
    return Response.json(status, {"status": status_text, "request_id": new_request_id(), "error": message})


@dataclass(frozen=True)
class Context:
    """What one request may see: the clock, the fault settings of the moment, how to build URLs."""

    now_ms: int
    seed: int
    page_size: int
    faults: FaultConfig
    base_url: str


def page_of(params: dict[str, str]) -> int:
    """Which page a request asks for: 1, or the page its `cursor` names."""
    raw = params.get("cursor")
    if raw is None:
        return 1
    try:
        return int(aggs.decode_state(raw).get("p", 1))
    except (aggs.BadRequest, TypeError, ValueError):
        return 1


def classify(path: str) -> str:
    if path.startswith("/v2/aggs/"):
        return "aggs"
    if path.startswith((_V2_SNAPSHOT_PREFIX, "/v3/snapshot")):
        return "snapshot"
    return "unknown"


def route(path: str, params: dict[str, str], ctx: Context) -> Response:
    try:
        if path.startswith("/v2/aggs/ticker/"):
            return _aggregates(path.removeprefix("/v2/aggs/ticker/").split("/"), params, ctx)
        if path.startswith(_V2_SNAPSHOT_PREFIX):
            return _v2_snapshot(path.removeprefix(_V2_SNAPSHOT_PREFIX).split("/"), ctx)
        if path.rstrip("/") == "/v3/snapshot":
            return _v3_snapshot(params, ctx)
    except aggs.BadRequest as exc:
        return error(400, str(exc))
    return Response.json(
        404, {"status": "NOT_FOUND", "request_id": new_request_id(), "message": f"No route for {path}"}
    )


def _minute_source(inst: Instrument, ctx: Context) -> Callable[[int, int], Bars]:
    holes = ctx.faults.holes

    def source(start: int, end: int) -> Bars:
        bars = minute_bars(inst, start, end, ctx.seed, ctx.faults.revision)
        if not holes or len(bars) == 0:
            return bars
        keep = np.ones(len(bars), dtype=bool)
        for h0, h1 in holes:
            keep &= (bars.t < h0) | (bars.t >= h1)
        return bars if keep.all() else bars.select(keep)

    return source


def _aggregates(segments: list[str], params: dict[str, str], ctx: Context) -> Response:
    query = aggs.parse_query(segments, params)
    inst = resolve_instrument(query.ticker)
    body: dict[str, Any] = {
        "ticker": query.ticker, "queryCount": 0, "resultsCount": 0, "adjusted": query.adjusted,
        "status": "OK", "request_id": new_request_id(),
    }
    if inst is None:  # the real API answers an unknown ticker with an empty 200
        return Response.json(200, body)
    page = aggs.plan_page(query, _minute_source(inst, ctx), ctx.page_size, ctx.now_ms)
    served = _row_faults(aggregate(page.minutes, query.bucketing), inst, ctx)
    body["queryCount"] = len(page.minutes)
    body["resultsCount"] = len(served)
    if len(served):
        body["results"] = aggs.results_json(
            served, integer_volume=inst.integer_volume, descending=query.sort == "desc"
        )
    next_query = query if ctx.faults.stuck_next_url and len(served) else page.next_query
    if next_query is not None:
        body["next_url"] = f"{ctx.base_url}{next_query.path()}?cursor={next_query.cursor()}"
    return Response.json(200, body)


def _row_faults(bars: Bars, inst: Instrument, ctx: Context) -> Bars:
    """Corrupt served rows as the faults ask (high/low swapped, close spikes)."""
    f = ctx.faults
    if len(bars) == 0 or not (f.bad_rows or f.bad_rows_fraction or f.spikes):
        return bars
    out = bars.writable_copy()
    if f.spikes:
        spike = np.isin(out.t, f.spikes)
        out.c[spike] = np.round(out.c[spike] * 1.2, inst.decimals)
        out.h[spike] = np.maximum(out.h[spike], out.c[spike])
    bad = np.isin(out.t, f.bad_rows)
    if f.bad_rows_fraction:
        bad |= HashStreams(inst.ticker, ctx.seed, "bad_rows").uniform("row", out.t) < f.bad_rows_fraction
    out.h[bad], out.l[bad] = out.l[bad].copy(), out.h[bad].copy()
    return out


def _snapshot_state(inst: Instrument, ctx: Context) -> snapshots.MarketState | None:
    start, end = snapshots.lookback(ctx.now_ms)
    return snapshots.market_state(inst, _minute_source(inst, ctx)(start, end), ctx.now_ms)


def _v2_snapshot(segments: list[str], ctx: Context) -> Response:
    if len(segments) != 3 or segments[0] not in _V2_MARKET_PREFIX or segments[1] != "tickers":
        return Response.json(404, {"status": "NOT_FOUND", "request_id": new_request_id(),
                                   "message": "Use /v2/snapshot/locale/global/markets/{forex|crypto}/tickers/{ticker}"})
    market, ticker = segments[0], segments[2]
    inst = resolve_instrument(ticker) if ticker.startswith(_V2_MARKET_PREFIX[market]) else None
    state = None if inst is None else _snapshot_state(inst, ctx)
    if state is None:
        return Response.json(404, {"status": "NOT_FOUND", "request_id": new_request_id(),
                                   "message": "Ticker not found."})
    return Response.json(200, {"status": "OK", "request_id": new_request_id(), "ticker": snapshots.v2_ticker(state)})


def _v3_snapshot(params: dict[str, str], ctx: Context) -> Response:
    if "cursor" in params:
        tickers, offset, limit, page = _decode_v3_cursor(params["cursor"])
    else:
        raw = params.get("ticker.any_of") or params.get("ticker")
        tickers = [t.strip() for t in raw.split(",") if t.strip()] if raw else catalog_tickers()
        if raw and len(tickers) > V3_MAX_TICKERS:
            raise aggs.BadRequest(f"ticker.any_of takes at most {V3_MAX_TICKERS} tickers, got {len(tickers)}")
        limit = _v3_limit(params.get("limit"))
        offset, page = 0, 1
    results = []
    for ticker in tickers[offset : offset + limit]:
        inst = resolve_instrument(ticker)
        state = None if inst is None else _snapshot_state(inst, ctx)
        results.append(snapshots.not_found_item(ticker) if state is None else snapshots.v3_item(state))
    body: dict[str, Any] = {"status": "OK", "request_id": new_request_id(), "results": results}
    if offset + limit < len(tickers):
        cursor = aggs.encode_state({"k": tickers, "o": offset + limit, "l": limit, "p": page + 1})
        body["next_url"] = f"{ctx.base_url}/v3/snapshot?cursor={cursor}"
    return Response.json(200, body)


def _v3_limit(raw: str | None) -> int:
    if raw is None:
        return V3_DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise aggs.BadRequest(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= V3_MAX_TICKERS:
        raise aggs.BadRequest(f"limit must be between 1 and {V3_MAX_TICKERS}, got {limit}")
    return limit


def _decode_v3_cursor(raw: str) -> tuple[list[str], int, int, int]:
    state = aggs.decode_state(raw)
    try:
        tickers = [str(t) for t in state["k"]]
        return tickers, int(state["o"]), int(state["l"]), int(state["p"])
    except (KeyError, TypeError, ValueError):
        raise aggs.BadRequest(f"cursor is not one this server issued: {raw!r}") from None
