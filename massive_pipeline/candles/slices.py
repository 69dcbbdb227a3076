"""How a ranged run is cut into slices, so its memory does not grow with the range.

A slice is a run of consecutive partitions of the asset, [lo, hi), with the bars that start in it.
Its edges are partition edges, and every candle timeframe's bars fall inside one partition (a
day, a week, a New York session), so a slice never splits a bar: a derived bar is resampled from
all of its base bars, and a write's window holds whole bars.

- A fetched asset's slices follow the provider's own pages (`page_slices`): the pages are the
  requests the run makes anyway, so slicing adds none. A page ends anywhere inside a partition,
  so the bars of the partition holding its newest bar wait for the next page; the partitions
  before it are complete (pages come in ascending time) and are released.
- A derived asset's slices are groups of its partitions spanning at most `SLICE_BASE_BARS` base
  bars' worth of time (`span_slices`); the base bars of each are read from the store.

Either way a slice spans at most `SLICE_BASE_BARS` bars of its timeframe, also when it holds no
bars at all (an empty answer over years still writes, and compares with the store, a month at a
time), except a single partition longer than that, which is a slice of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from massive_pipeline.massive.models import empty_bars

# One API page's worth: 50,000 M1 bars is about 35 days, the most one slice holds in memory.
SLICE_BASE_BARS = 50_000
SLICE_BARS_ENV = "MASSIVE_SLICE_BARS"


class SliceSizeError(ValueError):
    """`MASSIVE_SLICE_BARS` is not a positive integer; the message names it and the value."""


def slice_bars(env: Mapping[str, str] | None = None) -> int:
    """The bars a slice may hold: `$MASSIVE_SLICE_BARS`, else `SLICE_BASE_BARS` (smaller: less
    memory and more, smaller writes; the API requests are the same whatever it is)."""
    raw = (os.environ if env is None else env).get(SLICE_BARS_ENV, "").strip()
    if not raw:
        return SLICE_BASE_BARS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SliceSizeError(f"{SLICE_BARS_ENV} must be a positive integer (bars per slice), got {raw!r}")
    return value


@dataclass(frozen=True)
class Slice:
    """Partitions [lo, hi) of a run and the bars that start in them, sorted and unique on ts."""

    lo: pd.Timestamp
    hi: pd.Timestamp
    bars: pd.DataFrame


class PartitionEdges:
    """The starts of a run's consecutive partitions and the end of the last, as ns integers."""

    def __init__(self, windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]]) -> None:
        if not windows:
            raise ValueError("a ranged run needs at least one partition")
        self.ns = np.array([w[0].value for w in windows] + [windows[-1][1].value], dtype=np.int64)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(int(self.ns[0]), tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(int(self.ns[-1]), tz="UTC")

    def floor(self, ts_ns: int) -> int:
        """The start of the partition holding `ts_ns` (the run's end for a time past it)."""
        return int(self.ns[max(int(np.searchsorted(self.ns, ts_ns, side="right")) - 1, 0)])

    def spans(self, lo: int, hi: int, max_ns: int) -> Iterator[tuple[int, int]]:
        """[lo, hi) cut at partition edges into spans of at most `max_ns` (one partition at least)."""
        while lo < hi:
            limit = int(np.searchsorted(self.ns, lo + max_ns, side="right")) - 1
            cut = min(int(self.ns[limit]) if self.ns[limit] > lo else self._next(lo), hi)
            yield lo, cut
            lo = cut

    def _next(self, lo: int) -> int:
        return int(self.ns[int(np.searchsorted(self.ns, lo, side="right"))])


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def _cut(bars: pd.DataFrame, lo: int, hi: int, edges: PartitionEdges, max_ns: int) -> Iterator[Slice]:
    ts = pd.DatetimeIndex(bars["ts"]).as_unit("ns").asi8 if len(bars) else np.zeros(0, np.int64)
    for a, b in edges.spans(lo, hi, max_ns):
        i, j = np.searchsorted(ts, [a, b], side="left")
        yield Slice(_ts(a), _ts(b), bars.iloc[int(i):int(j)].reset_index(drop=True))


def page_slices(pages: Iterable[pd.DataFrame], edges: PartitionEdges, bar: pd.Timedelta,
                max_bars: int = SLICE_BASE_BARS) -> Iterator[Slice]:
    """The slices of a fetched asset's run, released as its pages arrive; together they cover the
    run's partitions exactly, each bar in one slice (a page's copy of a bar wins over an earlier
    page's while its partition is still pending; a copy of a bar already released, which only
    overlapping pages could bring, is dropped)."""
    max_ns = max_bars * bar.value
    lo = int(edges.ns[0])
    pending = empty_bars()
    for page in pages:
        if not len(page):
            continue
        page = page[page["ts"] >= _ts(lo)]
        pending = pd.concat([pending, page], ignore_index=True) if len(pending) else page
        pending = pending.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
        if not len(pending):
            continue
        ready = edges.floor(int(pending["ts"].iloc[-1].value))  # its partition may go on in the next page
        if ready - lo >= max_ns or (len(pending) >= max_bars and ready > lo):
            yield from _cut(pending, lo, ready, edges, max_ns)
            pending = pending[pending["ts"] >= _ts(ready)].reset_index(drop=True)
            lo = ready
    yield from _cut(pending, lo, int(edges.ns[-1]), edges, max_ns)


def span_slices(edges: PartitionEdges, bar: pd.Timedelta, max_bars: int = SLICE_BASE_BARS
                ) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """The [lo, hi) of a derived asset's slices: its partitions grouped so each slice reads at most
    `max_bars` base bars (`bar` is the base timeframe's length)."""
    for a, b in edges.spans(int(edges.ns[0]), int(edges.ns[-1]), max_bars * bar.value):
        yield _ts(a), _ts(b)
