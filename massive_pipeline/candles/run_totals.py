"""What a ranged run's slices did, summed, for its one materialization's metadata.

A ranged run writes slice by slice (`candles/slices.py`) but records one materialization per
partition, all with the run's metadata, so the figures a user reads (rows written, bars the answer
lacked, revisions, rejects) are the whole run's. Only counts and the first rows of each sample are
kept, so the totals stay small however long the range.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import pandas as pd

from massive_pipeline.candles.write_report import PREVIEW_ROWS, SAMPLE_ROWS, write_metadata
from massive_pipeline.quality.validation import ValidatedBars, rejects_metadata
from massive_pipeline.store import WriteResult


def _head(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The first SAMPLE_ROWS rows of a then b (the samples show the run's first rows)."""
    if len(a) >= SAMPLE_ROWS or not len(b):
        return a
    return pd.concat([a, b.head(SAMPLE_ROWS - len(a))], ignore_index=True) if len(a) else b.head(SAMPLE_ROWS)


def _first(a: pd.Timestamp | None, b: pd.Timestamp | None, pick) -> pd.Timestamp | None:
    return b if a is None else a if b is None else pick(a, b)


def add_writes(total: WriteResult, part: WriteResult) -> WriteResult:
    """Two window writes as one: counts summed, the first and last bar of both, the larger
    relative change, and the first rows of the missing and revised samples."""
    summed = {name: getattr(total, name) + getattr(part, name) for name in (
        "rows_written", "rows_deleted", "rows_new", "rows_unchanged", "rows_revised", "rows_missing_from_answer",
        "rows_removed", "rows_kept_protected", "rows_forming", "stored_before")}
    changes = [c for c in (total.max_rel_change, part.max_rel_change) if c is not None]
    return replace(
        total, **summed, first_ts=_first(total.first_ts, part.first_ts, min),
        last_ts=_first(total.last_ts, part.last_ts, max), max_rel_change=max(changes) if changes else None,
        missing=_head(total.missing, part.missing), revisions=_head(total.revisions, part.revisions),
    )


@dataclass
class RunTotals:
    """The sums over a run's slices; `metadata` is what its materialization reports."""

    write: WriteResult = field(default_factory=lambda: WriteResult(0, 0, None, None))
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    reject_sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    tail: pd.DataFrame = field(default_factory=pd.DataFrame)  # the last bars written, for the preview
    slices: int = 0

    def add(self, result: WriteResult, checked: ValidatedBars) -> None:
        self.write = add_writes(self.write, result)
        self.rejected += checked.rows_rejected
        if checked.rows_rejected:
            self.reasons.update(checked.reason_counts())
            self.reject_sample = _head(self.reject_sample, checked.rejects)
        if len(checked.valid):  # the run's last bars, which a short last slice may not hold alone
            recent = [f for f in (self.tail, checked.valid.tail(PREVIEW_ROWS)) if len(f)]
            self.tail = pd.concat(recent, ignore_index=True).tail(PREVIEW_ROWS)
        self.slices += 1

    def metadata(self, **extra: object) -> dict[str, object]:
        return write_metadata(
            self.write, self.tail, **extra, slices=self.slices,
            **rejects_metadata(self.rejected, dict(self.reasons), self.reject_sample),
        )
