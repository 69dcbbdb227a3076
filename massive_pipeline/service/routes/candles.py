"""`GET /candles`: one series over a range, in pages, as JSON, CSV, Parquet or Arrow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from massive_pipeline.service import params
from massive_pipeline.service.candles import load_bars
from massive_pipeline.service.context import ServiceContext
from massive_pipeline.service.errors import BadParameter
from massive_pipeline.service.formats import CandleFormat, render
from massive_pipeline.service.records import iso

DEFAULT_LIMIT = 5_000
MAX_LIMIT = 50_000
NEXT_CURSOR_HEADER = "X-Next-Cursor"


def router(context: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["candles"])

    @api.get(
        "/candles",
        summary="Bars of one symbol × timeframe over [start, end)",
        response_description="The bars, oldest first; a `next` link (body for JSON, `Link` header always) "
        "when the range holds more than `limit`",
        responses={200: {"content": {f.media_type: {} for f in CandleFormat if f is not CandleFormat.JSON}}},
    )
    def get_candles(
        request: Request,
        symbol: Annotated[
            str, Query(description="Catalog symbol, e.g. EURUSD", max_length=64, examples=["EURUSD"])
        ],
        timeframe: Annotated[
            str,
            Query(
                description="M1, M5, M15, M30, H1, H4, D1 or W1 (aliases: 5min, 1h, 1d)",
                max_length=16,
                examples=["H1"],
            ),
        ],
        start: Annotated[
            str | None,
            Query(
                description="First instant (inclusive): a UTC day YYYY-MM-DD or an "
                "ISO 8601 timestamp; default the first stored bar",
                max_length=64,
                examples=["2026-10-05"],
            ),
        ] = None,
        end: Annotated[
            str | None,
            Query(
                description="Last instant (exclusive), same forms; default after the last stored bar",
                max_length=64,
                examples=["2026-10-06T12:00:00Z"],
            ),
        ] = None,
        format: Annotated[CandleFormat, Query(description="Answer format")] = CandleFormat.JSON,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Bars per page")] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Query(description="From a `next` link: where the page starts", max_length=512)
        ] = None,
        include_forming: Annotated[
            bool,
            Query(
                description="Also bars whose period had not ended when stored (today's D1, this week's W1)"
            ),
        ] = False,
    ) -> Response:
        spec = params.symbol_spec(context.catalog, symbol)
        tf = params.timeframe(timeframe)
        if tf not in spec.timeframes:
            raise BadParameter(
                "timeframe", f"{spec.symbol} has no {tf.value} bars (base {spec.base_timeframe.value})"
            )
        lo, hi = params.time_range(start, end)
        after = None if cursor is None else params.Cursor.decode(cursor, spec, tf).after
        page = load_bars(
            context.store(), spec.symbol, tf, lo, hi, limit, after, include_forming=include_forming
        )
        next_url = None
        headers: dict[str, str] = {}
        if page.more and page.last_ts is not None:
            token = params.Cursor(spec.symbol, tf, page.last_ts).encode()
            next_url = str(request.url.include_query_params(cursor=token))
            headers = {"Link": f'<{next_url}>; rel="next"', NEXT_CURSOR_HEADER: token}
        envelope = {
            "symbol": spec.symbol,
            "timeframe": tf.value,
            "start": iso(lo),
            "end": iso(hi),
            "include_forming": include_forming,
            "count": len(page.bars),
            "next": next_url,
        }
        headers["X-Bar-Count"] = str(len(page.bars))
        return Response(render(page.bars, format, envelope), media_type=format.media_type, headers=headers)

    return api
