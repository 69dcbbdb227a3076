"""How a provider's answer for a window is merged with the bars already stored there.

A provider answer is not the whole truth about a window: minutes without quotes have no bar, and
a re-fetch can come back short or empty (massive-api.md). So an answer *adds and corrects* bars and
never removes one by its silence:

- a bar of the answer whose start is not stored is new;
- a bar whose start is stored replaces it; if the stored bar was complete and its OHLCV differ, the
  change is a *revision* (kept in `candle_revisions`); a stored bar that was still forming simply
  finishes;
- a stored bar the answer lacks is kept and counted, unless the caller asked for removals.

Everything here is numpy over sorted timestamp arrays (no SQL), so the rules can be tested alone
and cost a few vectorized operations for a million bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from massive_pipeline.core.timeframes import Timeframe

VALUE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")


@dataclass(frozen=True)
class StoredWindow:
    """The bars of a window as stored: sorted unique `ts_ns`, OHLCV and the `complete` flag."""

    ts_ns: np.ndarray
    values: dict[str, np.ndarray]
    complete: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    @classmethod
    def empty(cls) -> StoredWindow:
        return cls(
            np.empty(0, dtype=np.int64), {f: np.empty(0, dtype=np.float64) for f in VALUE_FIELDS},
            np.empty(0, dtype=bool),
        )


@dataclass(frozen=True)
class MergePlan:
    """What writing an answer into a window will do, decided before anything is written.

    Indexes are positions in the stored window (`stored_*`) or in the answer (`answer_*`).
    """

    answer_keep: np.ndarray  # bool per answer bar: written (False: a protected stored bar stays)
    stored_replaced: np.ndarray  # positions of stored bars the answer replaces
    stored_missing: np.ndarray  # positions of stored bars the answer lacks (kept or removed)
    stored_protected: np.ndarray  # positions of stored bars kept although the answer has them
    answer_new: np.ndarray  # positions of answer bars with no stored bar
    revised_stored: np.ndarray  # positions (stored) of complete bars whose OHLCV changed
    revised_answer: np.ndarray  # the same bars' positions in the answer
    rel_change: np.ndarray  # per revised bar: largest |new - old| / |old| over the prices

    @property
    def max_rel_change(self) -> float | None:
        return float(self.rel_change.max()) if len(self.rel_change) else None


def _differs(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Exact inequality, with NaN equal to NaN (values travel as exact IEEE doubles)."""
    return (old != new) & ~(np.isnan(old) & np.isnan(new))


def _members(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    """`np.isin` for a sorted pool, by binary search (both sides are sorted windows)."""
    if not len(sorted_pool) or not len(values):
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_pool, values), len(sorted_pool) - 1)
    return sorted_pool[pos] == values


def plan_merge(
    stored: StoredWindow,
    answer_ts_ns: np.ndarray,
    answer_values: dict[str, np.ndarray],
    *,
    protect_before_ns: int | None = None,
) -> MergePlan:
    """Match an answer (sorted unique `answer_ts_ns`) against the stored window.

    `protect_before_ns`: stored bars starting before this instant are kept even where the answer
    has them (a derived bar whose base bars were trimmed by retention would otherwise be replaced
    by one built from part of its base).
    """
    in_answer = _members(stored.ts_ns, answer_ts_ns)
    in_store = _members(answer_ts_ns, stored.ts_ns)
    answer_keep = np.ones(len(answer_ts_ns), dtype=bool)
    protected = np.zeros(len(stored), dtype=bool)
    if protect_before_ns is not None:
        protected = in_answer & (stored.ts_ns < protect_before_ns)
        answer_keep = ~(in_store & (answer_ts_ns < protect_before_ns))
    replaced = in_answer & ~protected
    stored_pos = np.flatnonzero(replaced)
    answer_pos = np.searchsorted(answer_ts_ns, stored.ts_ns[stored_pos])
    changed = np.zeros(len(stored_pos), dtype=bool)
    for f in VALUE_FIELDS:
        changed |= _differs(stored.values[f][stored_pos], answer_values[f][answer_pos])
    revised = changed & stored.complete[stored_pos]
    rev_s, rev_a = stored_pos[revised], answer_pos[revised]
    rel = np.zeros(len(rev_s), dtype=np.float64)
    for f in PRICE_FIELDS:
        old, new = stored.values[f][rev_s], answer_values[f][rev_a]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.abs(new - old) / np.abs(old)
        rel = np.fmax(rel, np.where(np.isfinite(r), r, 0.0))
    return MergePlan(
        answer_keep=answer_keep,
        stored_replaced=stored_pos,
        stored_missing=np.flatnonzero(~in_answer),
        stored_protected=np.flatnonzero(protected),
        answer_new=np.flatnonzero(~in_store),
        revised_stored=rev_s,
        revised_answer=rev_a,
        rel_change=rel,
    )


def contiguous_runs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive positions as (first, last) arrays: [2, 3, 4, 9] → ([2, 9], [4, 9]).

    The stored bars to delete are a subset of a sorted window; deleting each run as one closed
    ts range touches exactly those bars, whatever lies between the runs.
    """
    if not len(positions):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    breaks = np.flatnonzero(np.diff(positions) != 1)
    firsts = positions[np.concatenate([[0], breaks + 1])]
    lasts = positions[np.concatenate([breaks, [len(positions) - 1]])]
    return firsts, lasts


def complete_mask(ts_ns: np.ndarray, timeframe: Timeframe, now: pd.Timestamp) -> np.ndarray:
    """True where the bar's period [ts, its end) had ended at `now` (a New York day or week spanning
    a DST change is an hour shorter or longer than its nominal length)."""
    if not timeframe.is_new_york:
        return ts_ns + timeframe.delta.value <= now.value
    ends = pd.DatetimeIndex(timeframe.bar_end(pd.DatetimeIndex(ts_ns.view("datetime64[ns]")).tz_localize("UTC")))
    return ends.as_unit("ns").asi8 <= now.value
