"""Massive's API endpoints over the generated bars: what to answer, independent of the HTTP plumbing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from massive_pipeline.testing.devserver import aggs, snapshots
from massive_pipeline.testing.devserver.bars import Bars, Bucketing, aggregate
from massive_pipeline.testing.devserver.faults import FaultConfig
from massive_pipeline.testing.devserver.instruments import Instrument, catalog_tickers, resolve_instrument
from massive_pipeline.testing.devserver.prices import HashStreams, minute_bars

SNAPSHOT_NOT_ENTITLED_MESSAGE = (
    "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
)
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
    take: Callable[[str], bool] = lambda name: False  # consume one unit of a counting fault


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
    if ctx.faults.snapshots_not_entitled and classify(path) == "snapshot":
        return Response.json(403, {"status": "NOT_AUTHORIZED", "request_id": new_request_id(),
                                   "message": SNAPSHOT_NOT_ENTITLED_MESSAGE})
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
    f = ctx.faults
    query = aggs.parse_query(segments, params)
    if "cursor" not in params:  # a new fetch: do revisions apply to it yet?
        query = replace(query, revise=not ctx.take("revise_skip_fetches"))
    inst = resolve_instrument(query.ticker)
    body: dict[str, Any] = {
        "ticker": query.ticker, "queryCount": 0, "resultsCount": 0, "adjusted": query.adjusted,
        "status": _status(ctx), "request_id": new_request_id(),
    }
    if inst is None:  # the real API answers an unknown ticker with an empty 200
        return Response.json(200, body)
    if ctx.take("empty_pages_next"):  # nothing on this page, yet another page is announced
        body["results"] = []
        body["next_url"] = _next_url(ctx, replace(query, page=query.page + 1))
        return Response.json(200, body)
    bucketing = Bucketing.stamping(query.multiplier, query.timespan, inst.asset_class, f.bar_stamps)
    page = aggs.plan_page(query, _minute_source(inst, ctx), ctx.page_size, ctx.now_ms, bucketing)
    served = _row_faults(aggregate(page.minutes, bucketing), inst, ctx)
    if query.revise and f.revised_bars:
        served = _revised(served, inst, f.revised_bars)
    next_query = query if f.stuck_next_url and len(served) else page.next_query
    if f.short_answer_fraction:
        served = served.select(slice(0, int(len(served) * f.short_answer_fraction)))
        next_query = None
    if f.empty_answer:
        if f.empty_answer != "missing":
            body["results"] = None if f.empty_answer == "null" else []
        return Response.json(200, body)
    body["queryCount"] = aggs.base_aggregates(page.minutes, query.timespan)
    body["resultsCount"] = len(served)
    if len(served):
        results = aggs.results_json(served, integer_volume=inst.integer_volume, descending=query.sort == "desc")
        body["results"] = _with_problems(results, f.problem_fields)
    if next_query is not None:
        body["next_url"] = _next_url(ctx, next_query)
    return Response.json(200, body)


def _status(ctx: Context) -> str:
    return "DELAYED" if ctx.faults.delayed_status else "OK"


def _next_url(ctx: Context, query: aggs.AggQuery) -> str:
    return f"{ctx.base_url}{query.path()}?cursor={query.cursor()}"


def _revised(bars: Bars, inst: Instrument, starts: list[int]) -> Bars:
    """The bars starting at `starts` recalculated: prices x 1.001 (order of o/h/l/c kept), volume + 1."""
    hit = np.isin(bars.t, starts)
    if not hit.any():
        return bars
    out = bars.writable_copy()
    for name in ("o", "h", "l", "c", "vw"):
        getattr(out, name)[hit] = np.round(getattr(out, name)[hit] * 1.001, inst.decimals + (name == "vw"))
    out.v[hit] = out.v[hit] + 1
    return out


_BAD_VALUES = {"null": None, "text": "abc"}


def _with_problems(results: list[dict[str, Any]], problems: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """Rows with a field made null, non-numeric or absent, as `problem_fields` asks."""
    if not problems:
        return results
    by_t: dict[int, list[tuple[str, str]]] = {}
    for t, name, kind in problems:
        by_t.setdefault(t, []).append((name, kind))
    for row in results:
        for name, kind in by_t.get(row["t"], ()):
            if kind == "missing":
                row.pop(name, None)
            else:
                row[name] = _BAD_VALUES[kind]
    return results


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
    return Response.json(200, {"status": _status(ctx), "request_id": new_request_id(),
                               "ticker": snapshots.v2_ticker(state)})


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
    body: dict[str, Any] = {"status": _status(ctx), "request_id": new_request_id(), "results": results}
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
