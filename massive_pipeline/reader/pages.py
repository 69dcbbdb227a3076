"""Keyset pagination over (symbol, ts): which query comes next, never OFFSET.

A page is one query. The first page of a time window asks for every requested symbol in index
order (`symbol, timeframe, ts`), so a multi-symbol read is one query per page, not one per
symbol. When a page comes back full, the next one continues the symbol it stopped in strictly
after the last timestamp it returned (`symbol = s AND ts > t`, a direct range scan of the
primary key); when that continuation runs short the symbol is done and the next page takes the
symbols after it (`symbol > s`, compared in the store's own collation, the same one the index
sorts by, so no symbol is skipped or read twice whatever the database's locale). A combined
`(symbol, timeframe, ts) > (s, tf, t)` condition would say the same in one page but PostgreSQL
scans the whole stored prefix of `s` to find its start, which makes a long chunked read quadratic.

Each page asks for one row more than it keeps: that row says whether the symbol the page stopped
in goes on (continue it) or the next page can start at the following symbols, so a chunk that
ends exactly at a symbol's last bar costs no empty query. Pages never overlap and together cover the window exactly, so chunk edges lose or repeat no row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.request import ReadRequest


@dataclass(frozen=True)
class Page:
    """One query: rows of `symbols` in [lo, hi), `limit` of them kept, in (symbol, ts) order.

    `after_symbol` keeps only symbols after it; `after_ts` (with a single symbol) keeps only bars
    after that instant instead of from `lo`.
    """

    symbols: tuple[str, ...]
    lo: pd.Timestamp
    hi: pd.Timestamp
    limit: int | None
    after_symbol: str | None = None
    after_ts: pd.Timestamp | None = None


def windows(
    start: pd.Timestamp, end: pd.Timestamp, span: pd.Timedelta | None
) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) cut into consecutive spans (the last one shorter); one window without a span."""
    if span is None:
        yield start, end
        return
    lo = start
    while lo < end:
        hi = min(lo + span, end)
        yield lo, hi
        lo = hi


def next_page(page: Page, got: Batch, all_symbols: tuple[str, ...]) -> Page | None:
    """The page after `page`, which returned `got` (with its one extra row); None when the window is done."""
    if page.limit is not None and len(got) > page.limit:
        last = got.symbol_at(page.limit - 1)
        if got.symbol_at(page.limit) == last:
            return Page(
                (last,),
                page.lo,
                page.hi,
                page.limit,
                after_ts=got.ts_at(page.limit - 1),
            )
        return Page(all_symbols, page.lo, page.hi, page.limit, after_symbol=last)
    if page.after_ts is not None and len(all_symbols) > 1:
        return Page(all_symbols, page.lo, page.hi, page.limit, after_symbol=page.symbols[0])
    return None


def iter_pages(
    request: ReadRequest, fetch: Callable[[Page], Batch], *, chunk_rows: int | None, span: pd.Timedelta | None
) -> Iterator[Batch]:
    """Non-empty batches in (window, symbol, ts) order, one `fetch` (one query) per page.

    `fetch` must return up to `page.limit + 1` rows (the look-ahead row is not yielded).
    """
    for lo, hi in windows(request.start, request.end, span):
        page: Page | None = Page(request.symbols, lo, hi, chunk_rows)
        while page is not None:
            got = fetch(page)
            kept = got if page.limit is None or len(got) <= page.limit else got.head(page.limit)
            if len(kept):
                yield kept
            page = next_page(page, got, request.symbols)
