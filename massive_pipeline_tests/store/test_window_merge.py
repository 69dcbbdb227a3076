"""The merge rules of an answer into a stored window, without a database (`store/window_merge.py`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.store.window_merge import (
    VALUE_FIELDS,
    StoredWindow,
    _members,
    complete_mask,
    contiguous_runs,
    plan_merge,
)

MIN = 60_000_000_000  # one minute in ns


def _values(closes: list[float]) -> dict[str, np.ndarray]:
    c = np.array(closes, dtype=np.float64)
    return {f: (c if f == "close" else np.ones_like(c)) for f in VALUE_FIELDS}


def _stored(minutes: list[int], closes: list[float], complete: list[bool] | None = None) -> StoredWindow:
    flags = np.ones(len(minutes), dtype=bool) if complete is None else np.array(complete)
    return StoredWindow(np.array(minutes, dtype=np.int64) * MIN, _values(closes), flags)


def test_new_replaced_missing_and_revised_bars_are_told_apart():
    stored = _stored([0, 1, 2, 3, 4], [1.0, 1.0, 1.0, 1.0, 1.0], [True, True, True, True, False])
    answer_ts = np.array([1, 2, 4, 5], dtype=np.int64) * MIN
    plan = plan_merge(stored, answer_ts, _values([1.0, 1.5, 2.0, 1.0]))
    assert plan.answer_new.tolist() == [3]  # minute 5
    assert plan.stored_replaced.tolist() == [1, 2, 4]
    assert plan.stored_missing.tolist() == [0, 3]  # kept unless removals are accepted
    # minute 2 changed and was complete: a revision; minute 4 changed but was still forming: it finished
    assert plan.revised_stored.tolist() == [2] and plan.revised_answer.tolist() == [1]
    assert plan.max_rel_change == 0.5
    assert plan.answer_keep.all()


def test_an_empty_answer_replaces_nothing_and_misses_everything():
    stored = _stored([0, 1, 2], [1.0, 2.0, 3.0])
    plan = plan_merge(stored, np.empty(0, dtype=np.int64), _values([]))
    assert plan.stored_missing.tolist() == [0, 1, 2]
    assert len(plan.stored_replaced) == len(plan.answer_new) == len(plan.revised_stored) == 0
    assert plan.max_rel_change is None


def test_protected_stored_bars_are_not_replaced_by_the_answer():
    stored = _stored([0, 60, 120], [1.0, 2.0, 3.0])
    answer_ts = np.array([0, 60, 120], dtype=np.int64) * MIN
    plan = plan_merge(stored, answer_ts, _values([9.0, 9.0, 3.0]), protect_before_ns=61 * MIN)
    assert plan.stored_protected.tolist() == [0, 1]
    assert plan.answer_keep.tolist() == [False, False, True]
    assert plan.stored_replaced.tolist() == [2] and len(plan.revised_stored) == 0


def test_nan_equals_nan_and_tiny_changes_still_count():
    stored = _stored([0, 1], [1.0, np.nan])
    plan = plan_merge(stored, stored.ts_ns.copy(), _values([1.0 + 1e-12, np.nan]))
    assert plan.revised_stored.tolist() == [0]


def test_contiguous_runs_and_members():
    firsts, lasts = contiguous_runs(np.array([2, 3, 4, 9, 11, 12]))
    assert firsts.tolist() == [2, 9, 11] and lasts.tolist() == [4, 9, 12]
    assert [len(x) for x in contiguous_runs(np.empty(0, dtype=np.int64))] == [0, 0]
    rng = np.random.default_rng(7)
    for _ in range(300):
        a = np.unique(rng.integers(0, 60, rng.integers(0, 40)))
        b = np.unique(rng.integers(0, 60, rng.integers(0, 40)))
        assert (_members(a, b) == np.isin(a, b)).all()


def test_complete_means_the_period_had_ended():
    ts = np.array([pd.Timestamp("2026-10-08", tz="UTC").value, pd.Timestamp("2026-10-09", tz="UTC").value])
    now = pd.Timestamp("2026-10-09 00:00", tz="UTC")
    assert complete_mask(ts, Timeframe.D1, now).tolist() == [True, False]


def test_a_new_york_week_across_the_dst_change_is_complete_only_at_its_real_end():
    """The W1_NY week from Sunday 25 Oct 2026 17:00 EDT ends on Sunday 1 Nov 17:00 EST: 169 hours,
    so at 168 hours (its nominal length) it is still forming."""
    start = pd.Timestamp("2026-10-25 21:00", tz="UTC")
    ts = np.array([start.value])
    assert complete_mask(ts, Timeframe.W1_NY, start + pd.Timedelta(hours=168)).tolist() == [False]
    assert complete_mask(ts, Timeframe.W1_NY, start + pd.Timedelta(hours=169)).tolist() == [True]
