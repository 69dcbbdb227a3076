"""`gap_fill_job`: re-materialize the partitions that hold detected gaps, then judge each gap.

The partitions are re-materialized through the code location's own candle jobs (the runs a
UI backfill would make), one ranged run per run of adjacent days, so adjacent gaps cost one API
request per 50,000 bars rather than one per day. The derived timeframes of those days are
re-derived in the same runs. Those runs are tagged `massive/purpose=gap_fill` and
`massive/parent_run_id=<the gap_fill_job run>`, so the UI lists them next to the job run.

Afterwards each gap is compared with the store: all its expected bars present → `filled` (with
`filled_at`); the provider answered but some are still missing → `unfillable`, and the gap is
not tried again unless `retry_unfillable` is set. When the run itself failed (an API outage)
an unfilled gap goes back to `detected` for the next attempt.

Run config (`ops: {fill_gaps: {config: …}}`), every field optional:

- `symbols`, `timeframes`: which gaps (default: all symbols and timeframes)
- `retry_unfillable`: also retry gaps already found unfillable (default false)
"""


import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from dagster import (
    Config,
    DagsterInstance,
    Definitions,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    job,
    op,
)
from pydantic import Field

from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.quality.gap_detection import PURPOSE_TAG, GapSelectionError, select_series
from massive_pipeline.quality.gaps import present_mask
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

GAP_FILL_JOB = "gap_fill_job"
PARENT_RUN_TAG = "massive/parent_run_id"
GAP_FILL_PURPOSE = "gap_fill"


class GapFillConfig(Config):
    symbols: list[str] = Field(default_factory=list, description="catalog symbols; empty: the whole catalog")
    timeframes: list[str] = Field(default_factory=list, description="timeframes; empty: all")
    retry_unfillable: bool = Field(default=False, description="retry gaps already found unfillable")


@dataclass
class FillRange:
    """Adjacent UTC days of one series holding gaps: one ranged re-materialization."""

    spec: SymbolSpec
    timeframe: Timeframe
    first_day: dt.date
    last_day: dt.date
    gaps: pd.DataFrame  # rows of data_gaps


@dataclass
class FillOutcome:
    range: FillRange
    run_ids: list[str] = field(default_factory=list)
    error: str | None = None
    statuses: dict[int, str] = field(default_factory=dict)  # gap id -> new status

    def rows(self) -> list[dict[str, object]]:
        r = self.range
        return [
            {
                "symbol": r.spec.symbol, "timeframe": r.timeframe.value, "gap_id": int(g.id),
                "gap_start": g.gap_start, "gap_end": g.gap_end, "candles_missing": int(g.candles_missing),
                "status": self.statuses.get(int(g.id), g.status), "days": f"{r.first_day}..{r.last_day}",
                "runs": ",".join(i[:8] for i in self.run_ids), "error": self.error or "",
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
    expected = spec.market_calendar.expected_bars(gap_start, gap_end, timeframe)
    present = store.read(spec.symbol, timeframe, gap_start, gap_end)["ts"]
    mask = present_mask(pd.DatetimeIndex(present).as_unit("ns").asi8, expected.as_unit("ns").asi8,
                        timeframe.delta.value)
    return bool(np.all(mask))


def pending_gaps(store: CandleStore, spec: SymbolSpec, timeframe: Timeframe, retry_unfillable: bool) -> pd.DataFrame:
    gaps = store.gaps(spec.symbol, timeframe)
    wanted = {"detected", "filling"} | ({"unfillable"} if retry_unfillable else set())
    return gaps[gaps["status"].isin(wanted)].reset_index(drop=True)


Rematerialize = Callable[[SymbolSpec, list[Timeframe], dt.date, dt.date], list[str]]


def fill_gaps(
    store: CandleStore,
    series: Sequence[tuple[SymbolSpec, Sequence[Timeframe]]],
    rematerialize: Rematerialize,
    *,
    retry_unfillable: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[FillOutcome]:
    """Re-materialize every range of pending gaps with `rematerialize` (returns the run ids, raises
    on a failed run) and record what became of each gap."""
    from massive_pipeline.candles.launch import BackfillError

    outcomes = []
    for spec, tfs in series:
        for tf in tfs:
            for fill in plan_fill_ranges(spec, tf, pending_gaps(store, spec, tf, retry_unfillable)):
                outcome = FillOutcome(fill)
                for gap_id in fill.gaps["id"]:
                    store.set_gap_status(int(gap_id), "filling")
                try:
                    outcome.run_ids = rematerialize(
                        spec, refreshed_timeframes(store, spec, tf), fill.first_day, fill.last_day
                    )
                except BackfillError as exc:
                    outcome.error = str(exc)
                    log(f"{spec.symbol} {tf.value} {fill.first_day}..{fill.last_day}: {exc}")
                for g in fill.gaps.itertuples(index=False):
                    if gap_is_filled(store, spec, tf, g.gap_start, g.gap_end):
                        status = "filled"
                    else:  # the provider answered without these bars: it cannot supply them
                        status = "unfillable" if outcome.error is None else "detected"
                    store.set_gap_status(int(g.id), status)
                    outcome.statuses[int(g.id)] = status
                outcomes.append(outcome)
    return outcomes


def candle_rematerializer(
    defs: Definitions, instance: DagsterInstance, tags: dict[str, str]
) -> Rematerialize:
    """Re-materialize days of a symbol through the code location's candle jobs (recorded runs)."""
    from massive_pipeline.candles.launch import run_candle_backfill

    def run(spec: SymbolSpec, timeframes: list[Timeframe], first: dt.date, last: dt.date) -> list[str]:
        summaries = run_candle_backfill(defs, instance, [spec], timeframes, first, last, tags=tags)
        return [s.run_id for s in summaries]

    return run


def build_gap_fill_job(catalog: Catalog):
    @op(
        name="fill_gaps",
        description="Re-materialize the partitions holding detected gaps and mark each gap filled or unfillable.",
    )
    def fill_gaps_op(
        context: OpExecutionContext, config: GapFillConfig, candle_store: CandleStoreResource
    ) -> Output[list[dict[str, object]]]:
        from massive_pipeline.definitions import build_definitions

        try:
            series = select_series(catalog, config.symbols, config.timeframes, default="all")
        except GapSelectionError as exc:
            raise Failure(description=str(exc)) from None
        tags = {PURPOSE_TAG: GAP_FILL_PURPOSE, PARENT_RUN_TAG: context.run_id}
        rematerialize = candle_rematerializer(build_definitions(catalog), context.instance, tags)
        outcomes = fill_gaps(candle_store.store, series, rematerialize,
                             retry_unfillable=config.retry_unfillable, log=context.log.warning)
        rows = [row for o in outcomes for row in o.rows()]
        frame = pd.DataFrame(rows)
        counts = frame["status"].value_counts().to_dict() if len(frame) else {}
        context.log.info(f"{len(rows)} gap(s) in {len(outcomes)} range(s): {counts or 'nothing to fill'}")
        failed = [o for o in outcomes if o.error]
        if failed:
            context.log.error(f"{len(failed)} re-materialization(s) failed; their gaps stay detected")
        return Output(
            [{**r, "gap_start": r["gap_start"].isoformat(), "gap_end": r["gap_end"].isoformat()} for r in rows],
            metadata={
                "gaps": len(rows),
                "ranges": len(outcomes),
                "runs": sum(len(o.run_ids) for o in outcomes),
                "filled": int(counts.get("filled", 0)),
                "unfillable": int(counts.get("unfillable", 0)),
                "failed_ranges": len(failed),
                "gaps_table": MetadataValue.md(
                    markdown_table(frame, ("symbol", "timeframe", "gap_start", "gap_end", "candles_missing",
                                           "status", "days", "runs"), 50) if rows else "_nothing to fill_"
                ),
            },
        )

    @job(
        name=GAP_FILL_JOB,
        tags={PURPOSE_TAG: GAP_FILL_PURPOSE},
        description="Re-materialize the partitions holding detected gaps (one ranged run per run of adjacent "
        "days, tagged massive/purpose=gap_fill); gaps become filled or unfillable. Config: symbols, timeframes, "
        "retry_unfillable.",
    )
    def gap_fill_job() -> None:
        fill_gaps_op()

    return gap_fill_job
