"""Gap detection over 10 years of M1 bars of one symbol: vectorized detector vs plain Python loops.

Input: the forex calendar's expected M1 bars for 2016-2025 (about 3.76 million) and a stored series
with 0.3 % of minutes missing at random plus 500 holes of 3 to 300 minutes. Every detector gets
the same expected grid (the calendar's answer, timed separately) and the stored bars, and must
return the same runs of at least 3 missing bars:

- vectorized: `massive_pipeline.quality.gaps.missing_runs` on int64 nanosecond arrays (the form
  `CandleStore.read` gives); best of 5 runs.
- loop over datetimes: the founding notes' approach, a Python `for` over the timestamps as
  `datetime` objects (what a row-by-row database read gives), with a set of the stored ones.
- loop over integers: the same loop over nanosecond ints, the fastest plain loop we could write.

Ratios are measured side by side in this one run; the goal is ≥ 50× over the notes' approach.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from massive_pipeline.core.calendars import get_calendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.gaps import missing_runs

MIN_BARS = 3


def loop_runs(present: Sequence, expected: Sequence, step, min_bars: int) -> list[tuple]:
    """(first missing, end of last missing, count) of each run, by walking the expected bars."""
    have = set(present)
    out, first, last, count, prev = [], None, None, 0, None
    for t in expected:
        if t in have:
            if count >= min_bars:
                out.append((first, last + step, count))
            count = 0
        else:
            if count and t - prev != step:  # a closed market between two missing bars ends the run
                if count >= min_bars:
                    out.append((first, last + step, count))
                count = 0
            if count == 0:
                first = t
            last, count = t, count + 1
        prev = t
    if count >= min_bars:
        out.append((first, last + step, count))
    return out


def _timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    calendar = get_calendar("forex")
    start, end = pd.Timestamp("2016-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")
    t_cal, expected = _timed(lambda: calendar.expected_bars(start, end, Timeframe.M1))
    rng = np.random.default_rng(42)
    drop = rng.random(len(expected)) < 0.003
    for s in rng.choice(len(expected) - 400, 500, replace=False):
        drop[s : s + rng.integers(3, 301)] = True
    expected_ns = expected.as_unit("ns").asi8
    present_ns = expected_ns[~drop]
    step = Timeframe.M1.delta.value
    print(f"expected M1 bars 2016-2025 (forex calendar): {len(expected_ns):,}, computed in {t_cal:.2f} s")
    print(f"stored bars: {len(present_ns):,} ({drop.sum():,} missing)")

    t_vec, runs = _timed(lambda: missing_runs(present_ns, expected_ns, step, MIN_BARS), repeat=5)
    vectorized = list(zip(*(a.tolist() for a in runs), strict=True))

    present_dt = pd.DatetimeIndex(present_ns, tz="UTC").to_pydatetime().tolist()
    expected_dt = expected.to_pydatetime().tolist()
    step_dt = Timeframe.M1.delta.to_pytimedelta()
    t_loop_dt, loop_dt = _timed(lambda: loop_runs(present_dt, expected_dt, step_dt, MIN_BARS))
    t_loop_int, loop_int = _timed(lambda: loop_runs(present_ns.tolist(), expected_ns.tolist(), step, MIN_BARS))

    as_ns = [(pd.Timestamp(a).value, pd.Timestamp(b).value, c) for a, b, c in loop_dt]
    assert as_ns == vectorized == loop_int, "the detectors disagree"
    print(f"gaps of ≥ {MIN_BARS} bars: {len(vectorized):,} (all three detectors agree)")
    print()
    print(f"{'detector':<28}{'seconds':>10}{'vs vectorized':>16}")
    print(f"{'vectorized (numpy)':<28}{t_vec:>10.3f}{1.0:>15.1f}×")
    print(f"{'loop over datetimes (notes)':<28}{t_loop_dt:>10.3f}{t_loop_dt / t_vec:>15.1f}×")
    print(f"{'loop over int64 ns':<28}{t_loop_int:>10.3f}{t_loop_int / t_vec:>15.1f}×")
    print()
    verdict = "met" if t_loop_dt / t_vec >= 50 else "NOT met"
    print(f"speed-up over the notes' loop: {t_loop_dt / t_vec:.0f}× (goal ≥ 50×: {verdict})")


if __name__ == "__main__":
    main()
