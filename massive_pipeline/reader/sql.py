"""The store query of one page, and the two small probes that name a symbol the store does not hold.

A page is a `BarQuery` (store/bar_query.py), run by the store's bulk read paths: the request's
symbols, timeframe and columns, the page's window and keyset position, and one row more than
the page keeps (the look-ahead row, pages.py). The probes are plain SQL with bound values; they
read a few index entries, so the bulk paths' reasons for their own SQL do not apply.
"""

from __future__ import annotations

from massive_pipeline.reader.pages import Page
from massive_pipeline.reader.request import ReadRequest
from massive_pipeline.store.bar_query import BarQuery

PG = "postgresql"
SQLITE = "sqlite"


def bar_query(request: ReadRequest, page: Page) -> BarQuery:
    """The store query of `page`: up to `page.limit + 1` rows (one of look-ahead).

    Window edges are rounded up to the millisecond, as the request's bounds already are: bars sit
    on whole milliseconds, so a span such as `chunk="1500us"` still puts every bar in one window.
    """
    return BarQuery(
        symbols=page.symbols,
        timeframe=request.timeframe,
        start=page.lo.ceil("ms"),
        end=page.hi.ceil("ms"),
        columns=request.columns,
        include_forming=request.include_forming,
        after_symbol=page.after_symbol,
        after_ts=page.after_ts,
        limit=None if page.limit is None else page.limit + 1,
    )


def missing_series_query(dialect: str, symbols: tuple[str, ...], timeframe: str) -> tuple[str, list[object]]:
    """One row: for each symbol, whether the store holds any bar of it at `timeframe` (index probes)."""
    mark = "%s" if dialect == PG else "?"
    probe = f"EXISTS (SELECT 1 FROM candles WHERE symbol = {mark} AND timeframe = {mark})"
    params: list[object] = []
    for s in symbols:
        params += [s, timeframe]
    return "SELECT " + ", ".join([probe] * len(symbols)), params


def stored_symbols_query(dialect: str, timeframe: str) -> tuple[str, list[object]]:
    """Symbols with bars at `timeframe`, by a loose index scan (one probe per symbol, not a table scan)."""
    mark = "%s" if dialect == PG else "?"
    sql = (
        "WITH RECURSIVE s(sym) AS (SELECT min(symbol) FROM candles UNION ALL "
        "SELECT (SELECT min(symbol) FROM candles WHERE symbol > s.sym) FROM s WHERE s.sym IS NOT NULL) "
        f"SELECT sym FROM s WHERE sym IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM candles c WHERE c.symbol = s.sym AND c.timeframe = {mark})"
    )
    return sql, [timeframe]
