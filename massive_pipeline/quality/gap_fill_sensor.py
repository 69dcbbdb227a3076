"""`gap_fill_sensor`: fills recorded gaps by requesting runs of the candle jobs, and judges each gap
once its run has ended.

Why a sensor that requests runs rather than a job that executes the fills inside its own step: a
requested run is an ordinary run of the code location's candle jobs, so it waits in the run queue,
takes its slot in its lane's pool, is watched by run monitoring and retried by run retries
like every other run, and the UI lists it under the job it ran. A fill executed inside another
step had none of that and could overlap a second fill of the same bars.

Each tick (every `OperationsSettings.gap_fill_interval_seconds`, 60 s) does two things:

1. **Judge**, every tick. Each `filling` gap is matched to the runs tagged with its `id:attempt`
   (`massive/gap_attempts`, see `gap_fill.py`):
   - a run queued, starting, started or canceling, or failed and waiting for Dagster's automatic
     retry: the gap stays `filling`;
   - otherwise the newest such run decides (`gap_verdict`): all expected bars present → `filled`;
     run succeeded with bars still missing → `unfillable`; run failed or canceled → `detected`;
   - no such run at all (the tick that requested it failed before submitting, or the run was
     deleted): once `gap_fill_orphan_after` (10 min) has passed since the sensor first saw the gap
     without a run, the bars decide (`filled`, else back to `detected`), so no gap stays `filling`
     for ever.
   A successful fill of a timeframe the symbol's W1 (or D1_NY, W1_NY) bars are derived from is
   followed by one run per such timeframe re-deriving the weeks (New York sessions) it touched
   (each has its own partitions and job; requested only after the daily run has ended, so it reads
   the filled bars).
2. **Request**, once a day: at the first tick at or after the `gap_fill_cron` time (06:00 UTC, an
   hour after the 05:00 detection), and not while a `gap_detection_job` run is still queued or
   running (the round waits for the day's detection), every `detected` gap is requested: one
   `RunRequest` per range of adjacent days per series (`plan_fill_ranges`), for the candle job of the
   gap's timeframe, selecting that timeframe and the timeframes derived from it that the store keeps,
   over the partition range of those days (range tags, as a single-run backfill from the UI), tagged
   `massive/purpose=gap_fill` and with the gap ids; the gaps become `filling`. The `run_key` names the
   range and each gap's attempt, so the same attempt is never requested twice. A range whose days a
   gap-fill run of the same symbol still covers (a `gaps fill` from the command line) is left for
   the next round. A gap put back to `detected` by a failed run is retried at the next day's round
   (a crashed run is retried sooner by Dagster's run retries); `unfillable` gaps are never requested
   again by the sensor (`massive-pipeline gaps fill --retry-unfillable` retries them by hand).

The cursor (JSON, visible on the sensor's page) holds the last round made and the gaps waiting for a
run; losing it costs at most one early round and one grace period, never a duplicate run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.candles.jobs import build_candle_jobs, job_name_for
from massive_pipeline.candles.partitions import (
    OWN_PARTITION_TIMEFRAMES,
    PartitionRangeError,
    partition_range,
    partitions_for,
    window_bounds,
)
from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    cron_string_iterator,
)
from massive_pipeline.operations.runs import PENDING_STATUSES, iso_minute, pending_runs
from massive_pipeline.operations.settings import (
    PURPOSE_TAG,
    REQUESTED_AT_TAG,
    SYMBOL_TAG,
    OperationsSettings,
    Purpose,
)
from massive_pipeline.quality.gap_fill import (
    GAP_ATTEMPTS_TAG,
    GAP_FILL_PURPOSE,
    GAP_IDS_TAG,
    GAP_TIMEFRAME_TAG,
    FillRange,
    attempt_key,
    attempt_keys,
    fill_tags,
    gap_verdict,
    plan_fill_ranges,
    refreshed_timeframes,
    start_fill,
)
from massive_pipeline.resources.candle_store import CandleStoreResource
from massive_pipeline.store import CandleStore

GAP_FILL_SENSOR = "gap_fill_sensor"
# The W1 / D1_NY / W1_NY re-derivation that follows successful fills names the fill runs it follows.
FOLLOWS_RUNS_TAG = "massive/follows_runs"


@dataclass
class GapFillState:
    """The sensor's cursor: when the last daily round was made, and since when each `filling`
    gap attempt (`id:attempt`) has been seen without a run."""

    round_at: pd.Timestamp | None = None
    waiting: dict[str, str] = field(default_factory=dict)

    def to_cursor(self) -> str:
        return json.dumps({"round_at": None if self.round_at is None else iso_minute(self.round_at),
                           "waiting": dict(sorted(self.waiting.items()))})

    @classmethod
    def from_cursor(cls, text: str | None) -> GapFillState:
        """A cursor that cannot be read (edited by hand, an older format) starts afresh rather than
        failing every tick: at worst one early round and one grace period (see the module docstring)."""
        try:
            data = json.loads(text) if text else {}
            at = data.get("round_at")
            return cls(None if at is None else pd.Timestamp(at),
                       {str(k): str(v) for k, v in dict(data.get("waiting") or {}).items()})
        except (ValueError, TypeError, AttributeError):
            return cls()


@dataclass
class Judged:
    """What the judge decided for one gap (or why it left it `filling`)."""

    gap_id: int
    symbol: str
    timeframe: str
    status: str
    reason: str

    def line(self) -> str:
        return f"gap {self.gap_id} {self.symbol} {self.timeframe}: {self.status} ({self.reason})"


@dataclass
class Judgement:
    judged: list[Judged] = field(default_factory=list)  # gaps whose status changed
    still_filling: list[Judged] = field(default_factory=list)
    # successful fill runs judged now, with the series they filled: W1, D1_NY, W1_NY may follow them
    succeeded: list[tuple[DagsterRun, SymbolSpec, Timeframe]] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)


@dataclass
class GapFillTick:
    requests: list[RunRequest]
    follow_ups: int
    judgement: Judgement
    notes: list[str]
    state: GapFillState

    def summary(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for j in self.judgement.judged:
            counts[j.status] += 1
        judged = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
        fills = len(self.requests) - self.follow_ups
        return (f"{fills} fill run(s) and {self.follow_ups} W1/NY re-derivation(s) requested; "
                f"gaps judged: {judged}; still filling: {len(self.judgement.still_filling)}")


def last_round_time(cron: str, now: pd.Timestamp) -> pd.Timestamp:
    """The newest fire time of the daily round's cron at or before `now` (UTC)."""
    when = next(cron_string_iterator(now.timestamp(), cron, "UTC", ascending=False))
    return pd.Timestamp(when).tz_convert("UTC")


def _of_series(gaps: pd.DataFrame, series: Iterable[tuple[str, str]] | None) -> pd.DataFrame:
    if series is None:
        return gaps
    wanted = set(series)
    # a boolean Series, never a plain list: `frame[[]]` would select no columns of an empty frame
    keep = pd.Series([(s, t) in wanted for s, t in zip(gaps["symbol"], gaps["timeframe"], strict=True)],
                     index=gaps.index, dtype=bool)
    return gaps[keep].reset_index(drop=True)


def _is_live(run: DagsterRun) -> bool:
    """Still working on its gaps: not finished, or failed with Dagster's automatic retry to come."""
    return run.status in PENDING_STATUSES or run.is_complete_and_waiting_to_retry


def _fill_runs_by_attempt(instance: DagsterInstance, since: pd.Timestamp) -> dict[str, list[DagsterRun]]:
    """{"id:attempt": runs covering it, newest first} among gap-fill runs created since `since`."""
    records = instance.get_run_records(
        RunsFilter(tags={PURPOSE_TAG: GAP_FILL_PURPOSE}, created_after=since.to_pydatetime())
    )
    out: dict[str, list[DagsterRun]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.create_timestamp, reverse=True):
        for key in attempt_keys(record.dagster_run.tags):
            out[key].append(record.dagster_run)
    return out


def judge_filling_gaps(
    store: CandleStore,
    instance: DagsterInstance,
    catalog: Catalog,
    now: pd.Timestamp,
    *,
    waiting: Mapping[str, str] | None,
    orphan_after: dt.timedelta,
    series: Iterable[tuple[str, str]] | None = None,
) -> Judgement:
    """Give every `filling` gap (of `series`, (symbol, timeframe) pairs; default all) whose fill run
    has ended its verdict (see the module docstring).

    `waiting` is the sensor's record of attempts seen without a run; None (the command line, which
    keeps no such record) leaves those gaps to the sensor rather than judging a run not yet created.
    """
    out = Judgement()
    filling = _of_series(store.gaps(status="filling"), series)
    if filling.empty:
        return out
    runs = _fill_runs_by_attempt(instance, pd.Timestamp(filling["detected_at"].min()) - pd.Timedelta(minutes=1))
    succeeded: dict[str, tuple[DagsterRun, SymbolSpec, Timeframe]] = {}
    for g in filling.itertuples(index=False):
        key = attempt_key(g.id, g.attempts)
        candidates = runs.get(key, [])
        live = [r for r in candidates if _is_live(r)]
        tf = Timeframe(g.timeframe)
        if live:
            state = "failed, Dagster will retry it" if live[0].is_complete_and_waiting_to_retry else live[0].status.value
            out.still_filling.append(Judged(int(g.id), g.symbol, g.timeframe, "filling",
                                            f"run {live[0].run_id[:8]} {state.lower()}"))
            continue
        if g.symbol not in catalog:  # the symbol left the catalog: nobody will fill it
            store.set_gap_status(int(g.id), "detected")
            out.judged.append(Judged(int(g.id), g.symbol, g.timeframe, "detected", "symbol not in the catalog"))
            continue
        spec = catalog.get(g.symbol)
        if candidates:
            run = candidates[0]
            ok = run.status is DagsterRunStatus.SUCCESS
            reason = f"run {run.run_id[:8]} {run.status.value.lower()}"
            if ok:
                succeeded[run.run_id] = (run, spec, tf)
        else:
            first_seen = None if waiting is None else waiting.get(key)
            if waiting is None or first_seen is None or now - pd.Timestamp(first_seen) < orphan_after:
                since = first_seen or iso_minute(now)
                out.waiting[key] = since
                out.still_filling.append(Judged(int(g.id), g.symbol, g.timeframe, "filling",
                                                f"no run yet, waiting since {since}"))
                continue
            ok, reason = None, f"no run found since {first_seen}"
        status = gap_verdict(store, spec, tf, g.gap_start, g.gap_end, run_succeeded=ok)
        store.set_gap_status(int(g.id), status)
        out.judged.append(Judged(int(g.id), g.symbol, g.timeframe, status, reason))
    out.succeeded = list(succeeded.values())
    return out


def _resampled_from(spec: SymbolSpec, target: Timeframe, filled: Timeframe) -> bool:
    """Whether `target` is built from `filled`, directly or through a series the fill's own run
    re-derives (W1 from D1 from M1: an M1 fill re-derives D1 in the daily job, so W1 follows)."""
    source = spec.derived_from(target)
    while source is not None:
        if source is filled:
            return True
        source = spec.derived_from(source)
    return False


def follow_up_requests(
    store: CandleStore, succeeded: Sequence[tuple[DagsterRun, SymbolSpec, Timeframe]], requested_at: pd.Timestamp,
    settings: OperationsSettings | None = None,
) -> list[RunRequest]:
    """Runs re-deriving the W1, D1_NY and W1_NY bars that successful daily fills touched: one per
    range of adjacent partitions per symbol and timeframe, when that timeframe is derived from the
    filled one and stored. The daily job cannot hold them (they have partitions of their own), and
    a run started with the fill would read the bars before the fill had written them. A New York
    range holds every session overlapping the filled UTC days. Like the fills they carry the gap
    fill's max runtime."""
    runtime = (settings or OperationsSettings()).runtime_tags(Purpose.GAP_FILL)
    positions: dict[tuple[str, Timeframe], set[int]] = defaultdict(set)
    parents: dict[tuple[str, Timeframe], list[tuple[DagsterRun, int, int]]] = defaultdict(list)
    specs: dict[str, SymbolSpec] = {}
    for run, spec, tf in succeeded:
        try:
            first_day = dt.date.fromisoformat(run.tags[ASSET_PARTITION_RANGE_START_TAG])
            last_day = dt.date.fromisoformat(run.tags[ASSET_PARTITION_RANGE_END_TAG])
        except (KeyError, ValueError):
            continue
        for target in OWN_PARTITION_TIMEFRAMES:
            if target is tf or target not in spec.timeframes or not _resampled_from(spec, target, tf):
                continue
            try:
                first, last = partition_range(spec, target, first_day, last_day)
            except PartitionRangeError:
                continue
            keys = partitions_for(spec.start, target).get_partition_keys()
            a, b = keys.index(first), keys.index(last)
            positions[(spec.symbol, target)].update(range(a, b + 1))
            parents[(spec.symbol, target)].append((run, a, b))
            specs[spec.symbol] = spec
    requests = []
    for (symbol, target), wanted in sorted(positions.items()):
        spec = specs[symbol]
        if store.last_bar_ts(symbol, target) is None:
            continue
        keys = partitions_for(spec.start, target).get_partition_keys()
        for a, b in _adjacent_runs(sorted(wanted)):
            first, last = keys[a], keys[b]
            after = [r for r, ra, rb in parents[(symbol, target)] if ra <= b and a <= rb]
            gap_ids = sorted({i for r in after for i in r.tags.get(GAP_IDS_TAG, "").split(",") if i}, key=int)
            requests.append(RunRequest(
                run_key=f"{GAP_FILL_PURPOSE}:{symbol}:{target.value}:{first}..{last}:after:"
                        + ",".join(sorted(r.run_id[:8] for r in after)),
                job_name=job_name_for(spec, target),
                asset_selection=[candle_key(symbol, target)],
                tags={
                    PURPOSE_TAG: GAP_FILL_PURPOSE, SYMBOL_TAG: symbol, GAP_TIMEFRAME_TAG: target.value,
                    GAP_IDS_TAG: ",".join(gap_ids), FOLLOWS_RUNS_TAG: ",".join(r.run_id for r in after),
                    REQUESTED_AT_TAG: iso_minute(requested_at),
                    ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last,
                    **runtime,
                },
            ))
    return requests


def _adjacent_runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """[(first, last)] of the runs of consecutive `values` (sorted partition positions)."""
    out: list[tuple[int, int]] = []
    for value in values:
        if out and value - out[-1][1] == 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def fill_request(store: CandleStore, fill: FillRange, attempts: Mapping[int, int], first: str, last: str,
                 requested_at: pd.Timestamp, settings: OperationsSettings | None = None) -> RunRequest:
    """The run re-materializing `fill`: its timeframe and the ones derived from it that the store
    keeps, except W1, D1_NY and W1_NY (jobs of their own; see `follow_up_requests`), over partitions first..last. Its
    `dagster/max_runtime` lets run monitoring fail a fill whose process died, so its gaps go back
    to `detected` instead of staying `filling`."""
    spec, tf = fill.spec, fill.timeframe
    # only the fill's own job: W1 and the New York timeframes have partitions (and jobs) of their own
    job = job_name_for(spec, tf)
    timeframes = [tf] if tf is Timeframe.W1 else [t for t in refreshed_timeframes(store, spec, tf)
                                                  if job_name_for(spec, t) == job]
    tags = {
        **fill_tags(fill, attempts),
        REQUESTED_AT_TAG: iso_minute(requested_at),
        ASSET_PARTITION_RANGE_START_TAG: first,
        ASSET_PARTITION_RANGE_END_TAG: last,
        **(settings or OperationsSettings()).runtime_tags(Purpose.GAP_FILL),
    }
    return RunRequest(
        run_key=f"{GAP_FILL_PURPOSE}:{spec.symbol}:{tf.value}:{first}..{last}:{tags[GAP_ATTEMPTS_TAG]}",
        job_name=job_name_for(spec, tf),
        asset_selection=[candle_key(spec.symbol, t) for t in timeframes],
        tags=tags,
    )


@dataclass(frozen=True)
class BusyRange:
    """Days of a symbol that a gap-fill run still in progress re-materializes."""

    run_id: str
    first_day: dt.date
    last_day: dt.date

    def overlaps(self, fill: FillRange) -> bool:
        return self.first_day <= fill.last_day and fill.first_day <= self.last_day


def busy_fill_ranges(instance: DagsterInstance, catalog: Catalog) -> dict[str, list[BusyRange]]:
    """{symbol: days re-materialized by gap-fill runs not yet finished}, whoever launched them."""
    records = instance.get_run_records(
        RunsFilter(statuses=list(PENDING_STATUSES), tags={PURPOSE_TAG: GAP_FILL_PURPOSE})
    )
    out: dict[str, list[BusyRange]] = defaultdict(list)
    for record in records:
        run = record.dagster_run
        symbol = run.tags.get(SYMBOL_TAG, "")
        try:
            first = dt.date.fromisoformat(run.tags[ASSET_PARTITION_RANGE_START_TAG])
            last = dt.date.fromisoformat(run.tags[ASSET_PARTITION_RANGE_END_TAG])
        except (KeyError, ValueError):
            continue
        if symbol in catalog:
            last = _last_day(catalog.get(symbol), run.job_name, run.tags[ASSET_PARTITION_RANGE_END_TAG], last)
        out[symbol].append(BusyRange(run.run_id, first, last))
    return out


def _last_day(spec: SymbolSpec, job_name: str, last_key: str, last: dt.date) -> dt.date:
    """The last UTC day a run's partitions reach: a W1 key is the Monday of its week, a New York
    key the New York date its session (week) opens, the day (week) after in UTC; a daily key is its day."""
    for tf in OWN_PARTITION_TIMEFRAMES:
        if job_name == job_name_for(spec, tf):
            _, end = window_bounds(partitions_for(spec.start, tf).time_window_for_partition_key(last_key))
            return (end - pd.Timedelta(1, "ns")).date()
    return last


def request_fills(
    store: CandleStore, instance: DagsterInstance, catalog: Catalog, now: pd.Timestamp,
    series: Iterable[tuple[str, str]] | None = None, settings: OperationsSettings | None = None,
) -> tuple[list[RunRequest], list[str]]:
    """One request per range of `detected` gaps (of `series`, (symbol, timeframe) pairs; default
    all); its gaps become `filling`. Returns the requests and a note per range left alone."""
    gaps = _of_series(store.gaps(status="detected"), series)
    if gaps.empty:
        return [], []
    busy = busy_fill_ranges(instance, catalog)
    requests: list[RunRequest] = []
    notes: list[str] = []
    for (symbol, timeframe), group in gaps.groupby(["symbol", "timeframe"], sort=True):
        if symbol not in catalog:
            notes.append(f"{symbol} {timeframe}: {len(group)} gap(s) of a symbol not in the catalog, left alone")
            continue
        spec, tf = catalog.get(symbol), Timeframe(timeframe)
        for fill in plan_fill_ranges(spec, tf, group.reset_index(drop=True)):
            days = f"{symbol} {tf.value} {fill.first_day}..{fill.last_day}"
            blocker = next((b for b in busy.get(symbol, []) if b.overlaps(fill)), None)
            if blocker is not None:
                notes.append(f"{days}: gap-fill run {blocker.run_id[:8]} of these days is still in progress; "
                             "left for the next round")
                continue
            try:
                first, last = partition_range(spec, tf, fill.first_day, fill.last_day)
            except PartitionRangeError as exc:
                notes.append(f"{days}: {exc}")
                continue
            attempts = start_fill(store, fill)
            requests.append(fill_request(store, fill, attempts, first, last, now, settings))
    return requests, notes


def evaluate_gap_fill(
    instance: DagsterInstance,
    catalog: Catalog,
    store: CandleStore,
    settings: OperationsSettings,
    cursor: str | None,
) -> GapFillTick:
    """One tick of the sensor: judge the gaps whose runs ended, then the daily round if it is due."""
    now = settings.now()
    state = GapFillState.from_cursor(cursor)
    judgement = judge_filling_gaps(store, instance, catalog, now, waiting=state.waiting,
                                   orphan_after=settings.gap_fill_orphan_after)
    notes = [j.line() for j in judgement.judged] + [j.line() for j in judgement.still_filling]
    requests = follow_up_requests(store, judgement.succeeded, now, settings)
    follow_ups = len(requests)
    state = GapFillState(state.round_at, dict(judgement.waiting))
    round_at = last_round_time(settings.gap_fill_cron, now)
    if state.round_at is not None and round_at <= state.round_at:
        notes.append(f"next round of fills after {settings.gap_fill_cron} (UTC); last at {iso_minute(state.round_at)}")
    elif (no_key := settings.api_key_skip_reason()) is not None:
        notes.append(f"round of {iso_minute(round_at)} waits: {no_key}")  # fills fetch; kept for when the key is set
    elif detecting := pending_runs(instance, Purpose.GAP_DETECTION):
        run_id = next(iter(detecting.values()))
        notes.append(f"round of {iso_minute(round_at)} waits for gap_detection_job run {run_id[:8]} to finish")
    else:
        fills, round_notes = request_fills(store, instance, catalog, now, settings=settings)
        notes += round_notes
        for request in fills:  # the daemon creates their runs after this tick: the grace starts now
            state.waiting.update(dict.fromkeys(attempt_keys(request.tags), iso_minute(now)))
        requests += fills
        state.round_at = round_at
        notes.append(f"round of {iso_minute(round_at)}: {len(fills)} fill run(s) requested")
    return GapFillTick(requests, follow_ups, judgement, notes, state)


def build_gap_fill_sensor(catalog: Catalog, settings: OperationsSettings) -> SensorDefinition:
    @sensor(
        name=GAP_FILL_SENSOR,
        jobs=build_candle_jobs(catalog),  # the very job objects the code location registers
        minimum_interval_seconds=settings.gap_fill_interval_seconds,
        default_status=settings.sensor_status,
        description=f"Daily at {settings.gap_fill_cron} (UTC, after the day's gap detection): one run of the candle "
                    "jobs per range of adjacent days holding `detected` gaps, tagged massive/purpose=gap_fill; gaps "
                    "become `filling`. Every tick: gaps whose fill run ended become filled, unfillable (run "
                    "succeeded, bars still missing) or detected (run failed).",
    )
    def _gap_fill(context: SensorEvaluationContext, candle_store: CandleStoreResource) -> SensorResult:
        tick = evaluate_gap_fill(context.instance, catalog, candle_store.store, settings, context.cursor)
        for note in tick.notes:
            context.log.info(note)
        summary = tick.summary()
        context.log.info(summary)
        if tick.requests:
            return SensorResult(run_requests=tick.requests, cursor=tick.state.to_cursor())
        detail = "\n".join(tick.notes[-20:])
        return SensorResult(skip_reason=f"{summary}\n{detail}".strip(), cursor=tick.state.to_cursor())

    return _gap_fill
