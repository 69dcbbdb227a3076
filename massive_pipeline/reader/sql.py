"""The SELECT of one page, in the form each backend decodes fastest.

Every selected column is fixed-width and never NULL, so a PostgreSQL binary COPY record has one
layout and decodes as a numpy structured array: a nullable column travels as `coalesce(x, 0)`
plus an `x IS NULL` flag (sound whatever the stored values, where NaN-for-NULL would confuse a
stored NaN with a missing value and an integer has no NaN at all). The symbol travels as its
position in the request's sorted symbol list (a CASE), a small integer instead of a string per row.
Only `source` is variable-length; it is selected last so a record's fixed part never moves.
The text is built from fixed fragments and column names from a closed list; values are bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from massive_pipeline.reader.batch import NULLABLE
from massive_pipeline.reader.pages import Page
from massive_pipeline.reader.request import ReadRequest

PG = "postgresql"
SQLITE = "sqlite"


@dataclass(frozen=True)
class Selected:
    """One selected expression: the column it feeds and whether it is the NULL flag of that column."""

    column: str
    expression: str
    null_flag: bool = False


def selected(columns: tuple[str, ...]) -> list[Selected]:
    """Value columns as selected, in decoding order: fixed-width ones first, `source` last."""
    out: list[Selected] = []
    for c in columns:
        if c == "source":
            continue
        if c in NULLABLE:
            zero = (
                "0.0" if c == "vwap" else "0"
            )  # keep each column's type on SQLite, which has no column types
            out += [Selected(c, f"coalesce({c}, {zero})"), Selected(c, f"{c} IS NULL", null_flag=True)]
        else:
            out.append(Selected(c, c))
    if "source" in columns:
        out.append(Selected("source", "source"))
    return out


def _code_expression(dialect: str, request: ReadRequest) -> tuple[str, list[object]]:
    if len(request.symbols) == 1:
        return "0", []
    mark = "%s" if dialect == PG else "?"
    whens = " ".join(f"WHEN {mark} THEN {i}" for i in range(len(request.symbols)))
    return f"CASE symbol {whens} END", list(request.symbols)


def _placeholders(dialect: str, n: int) -> str:
    mark = "%s" if dialect == PG else "?"
    return ", ".join([mark] * n)


def page_query(dialect: str, request: ReadRequest, page: Page, bind_ts: object) -> tuple[str, list[object]]:
    """SQL and parameters of one page; `bind_ts` turns a bound into the backend's ts value."""
    mark = "%s" if dialect == PG else "?"
    code, params = _code_expression(dialect, request)
    select = ", ".join([f"{code}", "ts", *(s.expression for s in selected(request.columns))])
    where = [f"timeframe = {mark}"]
    params.append(request.timeframe)
    if page.after_ts is not None:
        where += [f"symbol = {mark}", f"ts > {mark}"]
        params += [page.symbols[0], bind_ts(page.after_ts)]  # type: ignore[operator]
    else:
        where += [f"symbol IN ({_placeholders(dialect, len(page.symbols))})", f"ts >= {mark}"]
        params += [*page.symbols, bind_ts(page.lo)]  # type: ignore[operator]
        if page.after_symbol is not None:
            where.append(f"symbol > {mark}")
            params.append(page.after_symbol)
    where.append(f"ts < {mark}")
    params.append(bind_ts(page.hi))  # type: ignore[operator]
    if not request.include_forming:
        where.append("complete" if dialect == PG else "complete = 1")
    sql = f"SELECT {select} FROM candles WHERE {' AND '.join(where)} ORDER BY symbol, timeframe, ts"
    if page.limit is not None:
        sql += f" LIMIT {int(page.limit) + 1}"  # one row of look-ahead (pages.py)
    return sql, params


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
