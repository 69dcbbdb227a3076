"""The keyset plan: windows that tile the range, and which page follows a page."""

from __future__ import annotations

import numpy as np
import pandas as pd

from massive_pipeline.reader.batch import Batch
from massive_pipeline.reader.pages import Page, next_page, windows

T0 = pd.Timestamp("2024-03-04", tz="UTC")
DAY = pd.Timedelta(days=1)
SYMBOLS = ("AAA", "BBB", "CCC")


def batch(codes: list[int], minutes: list[int]) -> Batch:
    ts = np.array([(T0 + pd.Timedelta(minutes=m)).value for m in minutes], dtype=np.int64)
    return Batch(SYMBOLS, np.array(codes, dtype=np.int32), ts)


def test_windows_tile_the_range_without_gap_or_overlap():
    got = list(windows(T0, T0 + pd.Timedelta(days=2, hours=5), DAY))
    assert got == [
        (T0, T0 + DAY),
        (T0 + DAY, T0 + 2 * DAY),
        (T0 + 2 * DAY, T0 + pd.Timedelta(days=2, hours=5)),
    ]
    assert list(windows(T0, T0 + DAY, None)) == [(T0, T0 + DAY)]
    assert list(windows(T0, T0, DAY)) == []


def test_a_full_page_whose_look_ahead_row_is_the_same_symbol_continues_it_after_the_last_kept_bar():
    page = Page(SYMBOLS, T0, T0 + DAY, 3)
    nxt = next_page(page, batch([0, 1, 1, 1], [5, 0, 1, 2]), SYMBOLS)
    assert nxt == Page(("BBB",), T0, T0 + DAY, 3, after_ts=T0 + pd.Timedelta(minutes=1))


def test_a_full_page_whose_look_ahead_row_starts_a_new_symbol_goes_on_after_the_symbol():
    page = Page(SYMBOLS, T0, T0 + DAY, 3)
    nxt = next_page(page, batch([0, 0, 1, 2], [5, 6, 0, 0]), SYMBOLS)
    assert nxt == Page(SYMBOLS, T0, T0 + DAY, 3, after_symbol="BBB")


def test_a_short_continuation_ends_its_symbol_and_a_short_first_page_ends_the_window():
    cont = Page(("BBB",), T0, T0 + DAY, 3, after_ts=T0)
    assert next_page(cont, batch([1], [9]), SYMBOLS) == Page(SYMBOLS, T0, T0 + DAY, 3, after_symbol="BBB")
    assert next_page(Page(SYMBOLS, T0, T0 + DAY, 3), batch([0, 2], [1, 1]), SYMBOLS) is None
    assert next_page(Page(SYMBOLS, T0, T0 + DAY, None), batch([0] * 9, list(range(9))), SYMBOLS) is None
    single = Page(("AAA",), T0, T0 + DAY, 3, after_ts=T0)
    assert next_page(single, batch([0], [4]), ("AAA",)) is None
