"""Gap filling: which partitions to re-materialize for recorded gaps, and what became of each gap.

A gap is filled by re-materializing the UTC days that hold it through the code location's own
candle jobs, one ranged run per run of adjacent days of a series (`plan_fill_ranges`), so adjacent
gaps cost one API request per 50,000 bars rather than one per day; the timeframes derived from the
gap's timeframe that the store keeps are re-derived by the same run (`refreshed_timeframes`).

Two launchers share this module, so both tag and judge a fill the same way:

- `gap_fill_sensor` (`gap_fill_sensor.py`) *requests* the runs from Dagster, so they go through
  the run queue, pools, run monitoring and run retries like every other run, and judges the gaps
  on a later tick, once their runs have ended;
- `massive-pipeline gaps fill` executes the same runs in its own process (`fill_gaps` with the
  CLI's in-process launcher), for an operator who wants a fill now and watches it.

Lifecycle of a gap: `detected` → `filling` (a run was requested; `attempts` counts it) → judged
when that run ends (`judge_gap`): every expected bar present → `filled` (with `filled_at`); the run
succeeded but bars are still missing, i.e. the provider answered without them → `unfillable`, not
tried again unless asked (`retry_unfillable`); the run failed or was canceled → back to `detected`.

Every fill run carries `massive/purpose=gap_fill`, `massive/symbol`, `massive/gap_ids` (the gaps it
covers, for people) and `massive/gap_attempts` (`id:attempt` pairs, what the judge matches: a run of
an earlier attempt of the same gap is never taken for the current one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from massive_pipeline.core.catalog import SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.operations.settings import PURPOSE_TAG, SYMBOL_TAG
from massive_pipeline.quality.gaps import present_mask
from massive_pipeline.store import CandleStore

GAP_FILL_PURPOSE = "gap_fill"
GAP_IDS_TAG = "massive/gap_ids"
GAP_ATTEMPTS_TAG = "massive/gap_attempts"
GAP_TIMEFRAME_TAG = "massive/gap_timeframe"


@dataclass
class FillRange:
    """Adjacent UTC days of one series holding gaps: one ranged re-materialization."""

    spec: SymbolSpec
    timeframe: Timeframe
    first_day: dt.date
    last_day: dt.date
    gaps: pd.DataFrame  # rows of data_gaps

    @property
    def gap_ids(self) -> list[int]:
        return [int(i) for i in self.gaps["id"]]


@dataclass
class FillOutcome:
    """What an in-process fill of one range did: its runs, its error, each gap's new status."""

    range: FillRange
    run_ids: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None  # why the range was left alone (a fill of its days is in progress)
    statuses: dict[int, str] = field(default_factory=dict)  # gap id -> new status

    def rows(self) -> list[dict[str, object]]:
        r = self.range
        return [
            {
                "symbol": r.spec.symbol, "timeframe": r.timeframe.value, "gap_id": int(g.id),
                "gap_start": g.gap_start, "gap_end": g.gap_end, "candles_missing": int(g.candles_missing),
                "status": self.statuses.get(int(g.id), g.status), "days": f"{r.first_day}..{r.last_day}",
                "runs": ",".join(i[:8] for i in self.run_ids), "error": self.error or "",
                "skipped": self.skipped or "",
            }
            for g in r.gaps.itertuples(index=False)
        ]


def _days(gap_start: pd.Timestamp, gap_end: pd.Timestamp) -> list[dt.date]:
    first = gap_start.tz_convert("UTC").floor("D")
    last = (gap_end.tz_convert("UTC") - pd.Timedelta(1, "ns")).floor("D")
    return [d.date() for d in pd.date_range(first, last, freq="D")]


def plan_fill_ranges(spec: SymbolSpec, timeframe: Timeframe, gaps: pd.DataFrame) -> list[FillRange]:
    """Group the gaps of one series into runs of adjacent days (a W1 gap's days included)."""
    if gaps.empty:
        return []
    day_sets = [_days(g.gap_start, g.gap_end) for g in gaps.itertuples(index=False)]
    days = sorted({d for ds in day_sets for d in ds})
    ranges: list[list[dt.date]] = [[days[0]]]
    for day in days[1:]:
        if (day - ranges[-1][-1]).days == 1:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    out = []
    for r in ranges:
        inside = [r[0] <= ds[0] and ds[-1] <= r[-1] for ds in day_sets]
        out.append(FillRange(spec, timeframe, r[0], r[-1], gaps[inside].reset_index(drop=True)))
    return out


def refreshed_timeframes(store: CandleStore, spec: SymbolSpec, timeframe: Timeframe) -> list[Timeframe]:
    """The gap's timeframe and the timeframes derived from it that the store keeps, so higher bars
    see the filled bars (a series nobody materialized is not started by a gap fill)."""
    derived = [
        tf for tf in spec.timeframes
        if spec.derived_from(tf) == timeframe and store.last_bar_ts(spec.symbol, tf) is not None
    ]
    return [timeframe, *derived]


def gap_is_filled(store: CandleStore, spec: SymbolSpec, timeframe: Timeframe, gap_start: pd.Timestamp,
                  gap_end: pd.Timestamp) -> bool:
    """Whether every bar the market calendar expects inside the gap is stored now."""
    expected = spec.market_calendar.expected_bars(gap_start, gap_end, timeframe)
    present = store.read(spec.symbol, timeframe, gap_start, gap_end)["ts"]
    mask = present_mask(timeframe.grid_ns(present), timeframe.grid_ns(expected), timeframe.delta.value)
    return bool(np.all(mask))


def pending_gaps(store: CandleStore, spec: SymbolSpec, timeframe: Timeframe, retry_unfillable: bool) -> pd.DataFrame:
    """Gaps of a series waiting for a fill: `detected` (and `unfillable` when asked).

    `filling` gaps are left out: a run for them is queued or in progress, and a second fill of the
    same bars would only overlap it; they are judged when that run ends.
    """
    gaps = store.gaps(spec.symbol, timeframe)
    wanted = {"detected"} | ({"unfillable"} if retry_unfillable else set())
    return gaps[gaps["status"].isin(wanted)].reset_index(drop=True)


def attempt_key(gap_id: int, attempt: int) -> str:
    return f"{int(gap_id)}:{int(attempt)}"


def attempt_keys(tags: Mapping[str, str]) -> set[str]:
    """The `id:attempt` pairs a fill run covers (empty for runs that fill no gap)."""
    text = tags.get(GAP_ATTEMPTS_TAG, "")
    return {part.strip() for part in text.split(",") if part.strip()}


def start_fill(store: CandleStore, fill: FillRange) -> dict[int, int]:
    """Mark the range's gaps `filling` (one more attempt each); {gap id: attempt now running}."""
    attempts = {}
    for g in fill.gaps.itertuples(index=False):
        store.set_gap_status(int(g.id), "filling")
        attempts[int(g.id)] = int(g.attempts) + 1
    return attempts


def fill_tags(fill: FillRange, attempts: Mapping[int, int]) -> dict[str, str]:
    """The tags every run filling `fill` carries, whichever launcher starts it."""
    return {
        PURPOSE_TAG: GAP_FILL_PURPOSE,
        SYMBOL_TAG: fill.spec.symbol,
        GAP_TIMEFRAME_TAG: fill.timeframe.value,
        GAP_IDS_TAG: ",".join(str(i) for i in fill.gap_ids),
        GAP_ATTEMPTS_TAG: ",".join(attempt_key(i, attempts[i]) for i in fill.gap_ids),
    }


def gap_verdict(store: CandleStore, spec: SymbolSpec, timeframe: Timeframe, gap_start: pd.Timestamp,
                gap_end: pd.Timestamp, run_succeeded: bool | None) -> str:
    """The status a gap takes once its fill run has ended.

    `run_succeeded` None means no run can be found any more (never launched, or deleted): the bars
    decide, and a gap still missing bars goes back to `detected`, since nobody asked the provider.
    Only a run that succeeded and still left bars missing proves the provider cannot supply them.
    """
    if gap_is_filled(store, spec, timeframe, gap_start, gap_end):
        return "filled"
    return "unfillable" if run_succeeded else "detected"


# An in-process launcher: re-materialize `timeframes` of the range's days with these tags;
# returns the run ids and, when a run failed, its error (one line).
Rematerialize = Callable[[FillRange, list[Timeframe], dict[str, str]], tuple[list[str], str | None]]


def fill_gaps(
    store: CandleStore,
    series: Sequence[tuple[SymbolSpec, Sequence[Timeframe]]],
    rematerialize: Rematerialize,
    *,
    retry_unfillable: bool = False,
    skip: Callable[[FillRange], str | None] = lambda _fill: None,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[FillOutcome]:
    """Fill every range of pending gaps with `rematerialize`, waiting for each, and judge its gaps.

    `skip` returns why a range must not be filled now (a fill run of its days is still in
    progress), or None; a skipped range keeps its gaps' status and is reported with the reason.
    """
    outcomes = []
    for spec, tfs in series:
        for tf in tfs:
            for fill in plan_fill_ranges(spec, tf, pending_gaps(store, spec, tf, retry_unfillable)):
                outcome = FillOutcome(fill)
                busy = skip(fill)
                if busy is not None:
                    outcome.skipped = busy
                    outcomes.append(outcome)
                    continue
                attempts = start_fill(store, fill)
                outcome.run_ids, outcome.error = rematerialize(
                    fill, refreshed_timeframes(store, spec, tf), fill_tags(fill, attempts)
                )
                if outcome.error:
                    log(f"{spec.symbol} {tf.value} {fill.first_day}..{fill.last_day}: {outcome.error}")
                for g in fill.gaps.itertuples(index=False):
                    status = gap_verdict(store, spec, tf, g.gap_start, g.gap_end, run_succeeded=outcome.error is None)
                    store.set_gap_status(int(g.id), status)
                    outcome.statuses[int(g.id)] = status
                outcomes.append(outcome)
    return outcomes
