"""One candle step's work on its slices: validate, quarantine, write, check, release.

A step (a refresh of one day, or a single-run backfill of years) takes its window slice by slice
(`candles/slices.py`), so what it holds is one slice and the next slice's first bars, never the
range. Each slice goes through the same path a whole window went through: the rows refused by
validation are quarantined with their reasons, the rest is merged into the store through
`write_window` over the slice's partitions (a short or empty answer keeps the stored bars it
lacks, unless removals were asked for; bars before a derived series' protected edge stay), and
the slice's partitions are checked against what the store then holds.

A slice is checked once the next one is written, with the previous slice's last bars as history
and the next one's first bars after it: the spike and stale-price checks then see across the
slice's edges what a whole-range pass saw, so each partition's results are those of one pass
(the spike detector's floor for flat stretches, a median over its whole input, is the one figure
taken per slice). The evaluations wait for the run's one materialization, whose metadata sums
the slices (`run_totals.py`), and are then recorded against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
from dagster import AssetCheckEvaluation, AssetExecutionContext

from massive_pipeline.candles.heap import RELEASE_AFTER_BARS, long_lived_objects_frozen, release_freed_memory
from massive_pipeline.candles.run_totals import RunTotals
from massive_pipeline.candles.slices import SLICE_BASE_BARS, Slice
from massive_pipeline.candles.write_report import CandleWriteConfig
from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.checks import candle_check_evaluations, history_lookback
from massive_pipeline.quality.cross_check import CrossCheck
from massive_pipeline.quality.settings import QualitySettings
from massive_pipeline.quality.validation import ValidatedBars, quarantine, validate_bars
from massive_pipeline.store import CandleStore, WriteResult

MAX_CONTEXT_BARS = SLICE_BASE_BARS


@dataclass(frozen=True)
class SliceWrite:
    """How a step writes its slices: the source recorded with the bars, the protected edge, and
    for a derived series the base bars each slice's bars were resampled from."""

    source: str
    protect_before: pd.Timestamp | None = None
    # derived series: a slice's input are its base bars, resampled by this before validation
    resample: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass
class _Written:
    """A slice written and waiting for its checks."""

    piece: Slice
    checked: ValidatedBars
    result: WriteResult
    stored: pd.DataFrame


def window_content(
    store: CandleStore, spec: SymbolSpec, tf: Timeframe, start: pd.Timestamp, end: pd.Timestamp,
    written: pd.DataFrame, result: WriteResult,
) -> pd.DataFrame:
    """What the window holds after the write, for the checks: the written bars, unless stored bars
    the answer lacked were kept (then the store is read again, since they are part of the series)."""
    if result.rows_removed == result.rows_missing_from_answer and not result.rows_kept_protected:
        return written
    return store.read(spec.symbol, tf, start, end)


def context_tail(frames: Iterable[pd.DataFrame], settings: QualitySettings) -> pd.DataFrame:
    """The last bars of `frames` (oldest first) that the next slice's spike and stale checks need:
    a spike window and then some, and the whole run of equal closes they end with (up to
    MAX_CONTEXT_BARS: a price frozen longer than that is reported with that length)."""
    parts = [f[["ts", "close"]] for f in frames if len(f)]
    if not parts:
        return pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "close": pd.Series([], dtype=float)})
    frame = pd.concat(parts, ignore_index=True)
    close = frame["close"].to_numpy()
    equal = close[::-1] == close[-1]
    run = len(close) if equal.all() else int(equal.argmin())
    keep = min(max(_context_bars(settings), run + 1), MAX_CONTEXT_BARS)
    return frame.iloc[-keep:].reset_index(drop=True)


class RangedWrite:
    """The slices of one step, written and checked in order; `totals` and `evaluations` at the end."""

    def __init__(self, context: AssetExecutionContext, config: CandleWriteConfig, store: CandleStore,
                 spec: SymbolSpec, tf: Timeframe, how: SliceWrite, cross_check: CrossCheck | None) -> None:
        self.context, self.config, self.store = context, config, store
        self.spec, self.tf, self.how, self.cross_check = spec, tf, how, cross_check
        self.settings = QualitySettings.from_env()
        self.totals = RunTotals()
        self.evaluations: list[AssetCheckEvaluation] = []
        self.base_bars_read = 0
        self._waiting: _Written | None = None
        self._history: pd.DataFrame | None = None  # the bars before the waiting slice, once known

    def run(self, slices: Iterable[Slice]) -> RangedWrite:
        with long_lived_objects_frozen():  # so the release after each slice scans only the run's objects
            for piece in slices:
                self.write(piece)
            self._check(None)
        return self

    def write(self, piece: Slice) -> None:
        label = f"{self.spec.symbol} {self.tf.value}"
        bars = piece.bars
        if self.how.resample is not None:
            self.base_bars_read += len(bars)
            bars = self.how.resample(bars)
        checked = validate_bars(bars, self.tf, label)
        run_id = self.context.run.run_id
        quarantine(self.store, self.spec.symbol, self.tf, checked, run_id)
        result = self.store.write_window(
            self.spec.symbol, self.tf, piece.lo, piece.hi, checked.valid, source=self.how.source,
            accept_removals=self.config.accept_removals, run_id=run_id, protect_before=self.how.protect_before,
        )
        self.totals.add(result, checked)
        stored = window_content(self.store, self.spec, self.tf, piece.lo, piece.hi, checked.valid, result)
        written = _Written(piece, checked, result, stored)
        self._check(written)
        self._waiting = written
        if len(piece.bars) >= RELEASE_AFTER_BARS:  # a ranged run's slice; a refresh's day never pays
            release_freed_memory()  # the dead slices' cycles and pages, or the resident set creeps (heap.py)

    def _check(self, following: _Written | None) -> None:
        """Check the waiting slice, now that the one after it (None: there is none) is written."""
        done = self._waiting
        if done is None:
            return
        after = following.stored.head(_context_bars(self.settings)) if following is not None else None
        derived = self.how.resample is not None
        if self._history is None:  # the first slice's history, as the checks would read it
            self._history = self.store.read(
                self.spec.symbol, self.tf, done.piece.lo - history_lookback(self.tf, self.settings), done.piece.lo)
        self.evaluations.extend(candle_check_evaluations(
            self.context, store=self.store, symbol=self.spec.symbol, timeframe=self.tf,
            calendar=self.spec.market_calendar, start=done.piece.lo, end=done.piece.hi, stored=done.stored,
            validated=done.checked, base_bars=done.piece.bars if derived else None,
            missing_from_answer=done.result.missing, removals_accepted=self.config.accept_removals,
            written=done.checked.valid if derived else None, cross_check=self.cross_check,
            history=self._history, after=after, targets={},
        ))
        self._history = context_tail([self._history, done.stored], self.settings)
        self._waiting = None


def _context_bars(settings: QualitySettings) -> int:
    """Bars either side of a slice that its spike check needs to judge its edge bars as a whole
    pass would: a rolling median of returns over a window, of deviations from rolling medians."""
    return 2 * settings.spike_window + 2
