"""Asset checks of every candle asset, evaluated per partition inside the asset's own step.

The checks are `check_specs` of the candle assets (one spec per check, partitioned like the
asset) rather than separate check ops: they need the bars the step just fetched and the rows it
quarantined, which only that step holds, and a blocking failure then fails the step, so Dagster
does not run the derived timeframes downstream in the same run.

Candle runs cover partition *ranges* (single-run backfills, the CLI), while Dagster's
`AssetCheckResult` only knows a run's single partition. The step therefore emits one
`AssetCheckEvaluation` per check and partition, each pointing at that partition's
materialization, which is what the UI needs to show a check's status partition by partition.

Checks (blocking ones stop derived timeframes). The rule checks judge the bars *stored* for the
window, never the rows refused before storage: one bad provider bar is quarantined and reported
by `quarantine` (a warning) while the rest of its day lands and its derived timeframes are built,
instead of failing every 5-minute refresh of that day.

- `schema` (ERROR, blocking): every rule of the timeframe's pandera model holds for the stored
  bars (high ≥ max(open, close), low ≤ min(open, close), high ≥ low; one bar per start; starts on
  the timeframe's grid; finite positive values), and for derived timeframes every bar agrees with
  the base bars it was resampled from; `failing_by_rule` counts the failing bars per rule family.
  These were four checks (`ohlc_consistent`, `no_duplicates`, `grid_aligned` besides `schema`),
  but each of the others only ever failed together with `schema` on the same rows, and a record
  per check and partition is what a backfill's bookkeeping spends its time on: one Dagster event
  (and two index writes) per record, about 6,700 partitions for two years of one symbol.
- `complete` (WARN): bars present ÷ bars the market calendar expects, with the missing ranges.
- `no_spikes` (WARN): isolated outliers of the close (see `anomalies.py`).
- `stale_prices` (WARN): the same close for N bars in a row while the market trades.
- `quarantine` (WARN): no row of the partition was refused before storage; otherwise the reasons,
  a sample of the rows (ts, values, reason) and how often each was seen (`rejected_candles`).
- `cross_check` (WARN, only on the asset an entry's `cross_check` compares): the closes agree with
  the other entry's stored bars once a constant basis is removed (`cross_check.py`); the figures
  are kept in `provider_comparisons`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    Output,
    PartitionsDefinition,
)

from massive_pipeline.core.calendars import MarketCalendar
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.dagster_compat import AssetCheckEvaluationTargetMaterializationData
from massive_pipeline.quality import cross_check as xcheck
from massive_pipeline.quality import schemas
from massive_pipeline.quality.anomalies import SPIKE_COLUMNS, STALE_COLUMNS, find_spikes, find_stale_runs
from massive_pipeline.quality.gaps import gaps_frame, missing_runs, present_mask
from massive_pipeline.quality.settings import QualitySettings
from massive_pipeline.quality.tables import markdown_table
from massive_pipeline.quality.validation import (
    CATEGORY_DUPLICATE,
    CATEGORY_GRID,
    CATEGORY_OHLC,
    CATEGORY_VALUE,
    ValidatedBars,
    row_failures,
)
from massive_pipeline.store import CandleStore
from massive_pipeline.store.side_tables import reject_fingerprints

SCHEMA = "schema"
COMPLETE = "complete"
NO_SPIKES = "no_spikes"
STALE_PRICES = "stale_prices"
QUARANTINE = "quarantine"
ANSWER_COVERS_STORE = "answer_covers_store"

PROBLEM_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "reason")
QUARANTINE_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "reason", "times_seen")
MISSING_RANGES_SHOWN = 10


@dataclass(frozen=True)
class CheckDef:
    name: str
    description: str
    blocking: bool = False
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR


CHECKS: tuple[CheckDef, ...] = (
    CheckDef(SCHEMA, "Every stored bar satisfies the candle schema (pandera): high ≥ max(open, close), low ≤ "
             "min(open, close), high ≥ low; one bar per start, on the timeframe's grid; finite positive prices; "
             "derived bars agree with their base bars. Failures are counted per rule in failing_by_rule. Rows "
             "refused before storage are the quarantine check's.", blocking=True),
    CheckDef(COMPLETE, "Bars present ÷ bars the market calendar expects is at least the threshold.",
             severity=AssetCheckSeverity.WARN),
    CheckDef(NO_SPIKES, "No isolated close outlier beyond k robust standard deviations (rolling MAD).",
             severity=AssetCheckSeverity.WARN),
    CheckDef(STALE_PRICES, "No run of N identical closes while the market trades.", severity=AssetCheckSeverity.WARN),
    CheckDef(QUARANTINE, "No rows quarantined: no row of the partition was refused before storage (refused rows "
             "are kept in rejected_candles with their reasons; the partition's other bars are stored).",
             severity=AssetCheckSeverity.WARN),
    CheckDef(ANSWER_COVERS_STORE, "The provider's answer held every bar already stored for the partition. Stored bars "
             "an answer lacks (a short or empty answer) are kept, unless the run asked for removals.",
             severity=AssetCheckSeverity.WARN),
)
CHECKS_BY_NAME = {c.name: c for c in CHECKS}
# the rule families `schema` counts in its `failing_by_rule` metadata (before, three checks of their own)
RULE_OHLC, RULE_DUPLICATE, RULE_GRID, RULE_VALUE, RULE_DERIVED = (
    CATEGORY_OHLC, CATEGORY_DUPLICATE, CATEGORY_GRID, CATEGORY_VALUE, "derived",
)


def candle_check_specs(
    asset_key: AssetKey, partitions_def: PartitionsDefinition, cross_check: xcheck.CrossCheck | None = None
) -> list[AssetCheckSpec]:
    """The quality checks of one candle asset, partitioned like it; `cross_check` adds the comparison
    with another catalog entry (a warning, never blocking: which source is wrong is for a person to say)."""
    specs = [
        AssetCheckSpec(
            c.name, asset=asset_key, description=c.description, blocking=c.blocking, partitions_def=partitions_def,
            metadata={"severity_on_failure": c.severity.value},
        )
        for c in CHECKS
    ]
    if cross_check is not None:
        specs.append(AssetCheckSpec(
            xcheck.CROSS_CHECK, asset=asset_key, description=cross_check.description, blocking=False,
            partitions_def=partitions_def,
            metadata={"severity_on_failure": AssetCheckSeverity.WARN.value, "other_symbol": cross_check.other_symbol},
        ))
    return specs


@dataclass(frozen=True)
class PartitionWindow:
    key: str | None
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Finding:
    check: str
    partition: str | None
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckInput:
    """What one materialization of a candle asset knows about its window [start, end)."""

    timeframe: Timeframe
    calendar: MarketCalendar
    partitions: Sequence[PartitionWindow]
    stored: pd.DataFrame  # the rows written for the window, sorted by ts
    validated: ValidatedBars  # rejects of this run
    history: pd.DataFrame  # stored bars just before the window (context for spikes and stale runs)
    base_bars: pd.DataFrame | None = None  # derived timeframes: the base bars of the window
    now: pd.Timestamp | None = None
    times_seen: Sequence[int | None] | None = None  # per row of validated.rejects, from rejected_candles
    # stored bars (ts, OHLCV) the provider's answer lacked, and whether the run removed them
    missing_from_answer: pd.DataFrame | None = None
    removals_accepted: bool = False
    # derived timeframes: the bars this run rebuilt, the only ones its base bars can judge (a kept
    # bar whose base was trimmed by retention cannot agree with what is left); default `stored`
    written: pd.DataFrame | None = None
    # stored bars just after the window (a slice of a ranged run: the next slice's first bars), so
    # the centred spike window and a stale run that goes on past the window see what follows;
    # what is found there is the next slice's to report
    after: pd.DataFrame | None = None


def _ns(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    index = pd.DatetimeIndex(ts)
    if len(index) == 0:
        return np.zeros(0, dtype=np.int64)
    return index.tz_convert("UTC").as_unit("ns").asi8


def _partition_of(ts_ns: np.ndarray, partitions: Sequence[PartitionWindow]) -> np.ndarray:
    """Index of the partition holding each timestamp (values before the first go to the first)."""
    starts = np.array([p.start.value for p in partitions], dtype=np.int64)
    return np.clip(np.searchsorted(starts, ts_ns, side="right") - 1, 0, len(partitions) - 1)


def _problems(inp: CheckInput) -> pd.DataFrame:
    """Every stored bar that breaks a rule, and derived bars off their base (not the quarantined
    rows: they were never stored, `_quarantine_findings` reports them)."""
    parts: list[pd.DataFrame] = []
    stored_failures = row_failures(inp.stored, inp.timeframe, "stored bars") if len(inp.stored) else {}
    if stored_failures:
        rows = inp.stored.loc[list(stored_failures)].copy()
        rows["reason"] = ["; ".join(stored_failures[i]) for i in rows.index]
        rows["categories"] = [frozenset(stored_failures[i].values()) for i in rows.index]
        parts.append(rows)
    if inp.base_bars is not None:
        parts.append(_disagreements(inp))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=[*PROBLEM_COLUMNS, "categories"])
    return pd.concat([p[[*PROBLEM_COLUMNS, "categories"]] for p in parts], ignore_index=True)


def _disagreements(inp: CheckInput) -> pd.DataFrame:
    import pandera.pandas as pa

    rebuilt = inp.stored if inp.written is None else inp.written
    comparison = schemas.derived_comparison(rebuilt, inp.base_bars, inp.timeframe)
    try:
        schemas.DerivedAgreement.validate(comparison, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.dropna(subset=["index"])
    else:
        return pd.DataFrame(columns=[*PROBLEM_COLUMNS, "categories"])
    columns_by_row: dict[int, list[str]] = {}
    for check, index in cases[["check", "index"]].drop_duplicates().itertuples(index=False):
        columns_by_row.setdefault(int(index), []).append(str(check).removesuffix("_matches_base"))
    rows = comparison.loc[sorted(columns_by_row), ["ts", *schemas.VALUE_COLUMNS]].copy()
    rows["reason"] = [
        f"{inp.timeframe.value} bar disagrees with its base bars: {', '.join(sorted(columns_by_row[i]))}" for i in rows.index
    ]
    rows["categories"] = [frozenset({RULE_DERIVED})] * len(rows)
    return rows


def _rows_by_partition(part: np.ndarray) -> dict[int, np.ndarray]:
    """{partition index: row positions} for the partitions that hold any row: grouped once, so a
    range of 700 partitions with one bad row costs one pass, not 700 filters."""
    if not len(part):
        return {}
    order = np.argsort(part, kind="stable")
    keys, first = np.unique(part[order], return_index=True)
    return {int(k): rows for k, rows in zip(keys, np.split(order, first[1:]), strict=True)}


def _rule_findings(inp: CheckInput, problems: pd.DataFrame) -> list[Finding]:
    """One `schema` finding per partition. The rule families a stored bar can break (OHLC relations,
    one bar per start, the grid, finite positive values, agreement with the base bars) are all rules
    of the timeframe's model, so one record per partition carries them, counted per family in
    `failing_by_rule`: a record per family and partition was most of a backfill's bookkeeping."""
    part_of_problem = _partition_of(_ns(problems["ts"].fillna(inp.partitions[0].start)), inp.partitions)
    stored_per_partition = np.bincount(_partition_of(_ns(inp.stored["ts"]), inp.partitions),
                                       minlength=len(inp.partitions))
    failing = _rows_by_partition(part_of_problem)
    out: list[Finding] = []
    for i, part in enumerate(inp.partitions):
        stored_i = int(stored_per_partition[i])
        meta: dict[str, object] = {"bars_stored": stored_i, "failing_rows": 0}
        if i in failing:
            rows = problems.iloc[failing[i]]
            counts = _reason_counts(rows["reason"])
            by_rule: dict[str, int] = {}
            for categories in rows["categories"]:
                for category in categories:
                    by_rule[category] = by_rule.get(category, 0) + 1
            meta["failing_rows"] = len(rows)
            meta["reasons"] = MetadataValue.json(counts)
            meta["failing_by_rule"] = MetadataValue.json(dict(sorted(by_rule.items())))
            meta["failing_sample"] = MetadataValue.md(markdown_table(rows, PROBLEM_COLUMNS))
            out.append(Finding(SCHEMA, part.key, False, f"{len(rows)} stored bar(s) fail: {', '.join(counts)}", meta))
        else:
            out.append(Finding(SCHEMA, part.key, True, f"{stored_i} bars pass" if stored_i else "no bars to check",
                               meta))
    return out


def _reason_counts(reasons: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in reasons:
        for r in str(reason).split("; "):
            counts[r] = counts.get(r, 0) + 1
    return counts


def _quarantine_findings(inp: CheckInput) -> list[Finding]:
    """Per partition, the rows refused before storage: a warning, since the partition's other bars
    are stored and its derived timeframes are still built."""
    rejects = inp.validated.rejects
    if inp.times_seen is not None and len(inp.times_seen) == len(rejects):
        rejects = rejects.assign(times_seen=list(inp.times_seen))
    else:
        rejects = rejects.assign(times_seen=[None] * len(rejects))
    part = _partition_of(_ns(rejects["ts"].fillna(inp.partitions[0].start)), inp.partitions)
    stored = np.bincount(_partition_of(_ns(inp.stored["ts"]), inp.partitions), minlength=len(inp.partitions))
    out = []
    for i, p in enumerate(inp.partitions):
        rows = rejects[part == i]
        meta: dict[str, object] = {"rows_quarantined": len(rows), "bars_stored": int(stored[i])}
        if len(rows):
            counts = _reason_counts(rows["reason"])
            meta["reasons"] = MetadataValue.json(counts)
            meta["quarantined_sample"] = MetadataValue.md(markdown_table(rows, QUARANTINE_COLUMNS))
            meta["quarantined_rows"] = MetadataValue.json([
                {"ts": None if pd.isna(r.ts) else r.ts.isoformat(), "reason": r.reason,
                 "times_seen": None if r.times_seen is None or pd.isna(r.times_seen) else int(r.times_seen)}
                for r in rows.head(MISSING_RANGES_SHOWN).itertuples(index=False)
            ])
            first = rows.iloc[0]
            when = "ts missing" if pd.isna(first["ts"]) else f"{first['ts']:%Y-%m-%d %H:%M}"
            description = (
                f"{len(rows)} row(s) quarantined in rejected_candles ({', '.join(counts)}; first {when}); "
                f"the partition's other {int(stored[i])} bar(s) are stored"
            )
            seen = [int(t) for t in rows["times_seen"] if t is not None and not pd.isna(t)]
            if seen and max(seen) > 1:
                description += f"; the same row(s) refused before, up to {max(seen)} times"
        else:
            description = "no rows quarantined"
        out.append(Finding(QUARANTINE, p.key, not len(rows), description, meta))
    return out


def _answer_findings(inp: CheckInput) -> list[Finding]:
    """Per partition, stored bars the answer did not hold: kept (a warning that the provider came
    back short) or removed because the run asked for it (listed, so nothing disappears unseen)."""
    missing = inp.missing_from_answer
    if missing is None:
        missing = pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]")})
    part = _partition_of(_ns(missing["ts"]), inp.partitions)
    verb = "removed as the run asked" if inp.removals_accepted else "kept"
    out = []
    for i, p in enumerate(inp.partitions):
        rows = missing[part == i]
        meta: dict[str, object] = {"bars_missing_from_answer": len(rows), "removals_accepted": inp.removals_accepted}
        if len(rows):
            columns = [c for c in PROBLEM_COLUMNS if c in rows.columns]
            meta["missing_sample"] = MetadataValue.md(markdown_table(rows, columns))
            description = (
                f"the provider's answer lacked {len(rows)} stored bar(s) "
                f"({rows['ts'].iloc[0]:%Y-%m-%d %H:%M} .. {rows['ts'].iloc[-1]:%Y-%m-%d %H:%M}); {verb}"
            )
        else:
            description = "the answer held every stored bar"
        out.append(Finding(ANSWER_COVERS_STORE, p.key, not len(rows), description, meta))
    return out


def _complete_findings(inp: CheckInput, settings: QualitySettings) -> list[Finding]:
    tf = inp.timeframe
    now = inp.now if inp.now is not None else pd.Timestamp.now(tz="UTC")
    horizon = tf.floor(now)  # the bar in progress is not expected yet
    lo = inp.partitions[0].start
    hi = min(inp.partitions[-1].end, horizon)
    expected = _ns(inp.calendar.expected_bars(lo, hi, tf)) if hi > lo else np.zeros(0, dtype=np.int64)
    # presence on the timeframe's uniform grid (New York wall time for D1_NY/W1_NY)
    have = present_mask(tf.grid_ns(inp.stored["ts"]), tf.grid_ns(expected), tf.delta.value)
    starts = np.array([p.start.value for p in inp.partitions], dtype=np.int64)
    bounds = np.append(np.searchsorted(expected, starts, side="left"), len(expected))
    bounds[0] = 0
    present_before = np.concatenate([[0], np.cumsum(have)])
    out: list[Finding] = []
    for i, p in enumerate(inp.partitions):
        lo_i, hi_i = int(bounds[i]), int(bounds[i + 1])
        exp_i, got_i = hi_i - lo_i, int(present_before[hi_i] - present_before[lo_i])
        ratio = got_i / exp_i if exp_i else 1.0
        meta: dict[str, object] = {
            "bars_expected": exp_i, "bars_present": got_i, "bars_missing": exp_i - got_i,
            "share_present": round(ratio, 6), "threshold": settings.complete_min,
        }
        if exp_i - got_i:
            window, found = expected[lo_i:hi_i], have[lo_i:hi_i]
            grid = tf.grid_ns(window)
            starts, ends, counts = missing_runs(grid[found], grid, tf.delta.value, 1)
            ranges = gaps_frame(tf.from_grid_ns(starts), tf.from_grid_ns(ends), counts).sort_values(
                ["candles_missing", "gap_start"], ascending=[False, True]
            )
            meta["missing_ranges"] = len(ranges)
            meta["longest_missing_ranges"] = MetadataValue.md(
                markdown_table(ranges, ("gap_start", "gap_end", "candles_missing"), MISSING_RANGES_SHOWN)
            )
        if exp_i == 0:
            description = "market closed: no bars expected" if p.start < horizon else "no bars due yet"
        else:
            description = f"{got_i} of {exp_i} expected bars present ({ratio:.2%})"
        out.append(Finding(COMPLETE, p.key, ratio >= settings.complete_min, description, meta))
    return out


def _context_frame(inp: CheckInput) -> pd.DataFrame:
    cols = ["ts", "close"]
    after = inp.after if inp.after is not None else inp.stored.iloc[:0]
    frames = [f[cols] for f in (inp.history, inp.stored, after) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else inp.stored[cols]


def _inside(ts: pd.Series, inp: CheckInput) -> pd.Series:
    """Which of the context's times lie in the window (not in its history, nor in `after`)."""
    return (ts >= inp.partitions[0].start) & (ts < inp.partitions[-1].end)


def _spike_findings(inp: CheckInput, settings: QualitySettings) -> list[Finding]:
    spikes = find_spikes(_context_frame(inp), settings.spike_k, settings.spike_window)
    spikes = spikes[_inside(spikes["ts"], inp)]
    part = _partition_of(_ns(spikes["ts"]), inp.partitions)
    out = []
    for i, p in enumerate(inp.partitions):
        rows = spikes[part == i]
        meta: dict[str, object] = {"spikes": len(rows), "k": settings.spike_k, "window_bars": settings.spike_window}
        if len(rows):
            meta["spike_bars"] = MetadataValue.md(markdown_table(rows, SPIKE_COLUMNS))
            description = f"{len(rows)} isolated close spike(s), first at {rows['ts'].iloc[0]}"
        else:
            description = "no spikes"
        out.append(Finding(NO_SPIKES, p.key, not len(rows), description, meta))
    return out


def _stale_findings(inp: CheckInput, settings: QualitySettings) -> list[Finding]:
    runs = find_stale_runs(_context_frame(inp), settings.stale_bars)
    runs = runs[_inside(runs["last_bar"], inp)]
    part = _partition_of(_ns(runs["last_bar"]), inp.partitions)
    out = []
    for i, p in enumerate(inp.partitions):
        rows = runs[part == i]
        meta: dict[str, object] = {"stale_runs": len(rows), "min_bars": settings.stale_bars}
        if len(rows):
            meta["stale_runs_sample"] = MetadataValue.md(markdown_table(rows, STALE_COLUMNS))
            description = f"{len(rows)} run(s) of ≥ {settings.stale_bars} identical closes, longest {int(rows['bars'].max())}"
        else:
            description = "no stale prices"
        out.append(Finding(STALE_PRICES, p.key, not len(rows), description, meta))
    return out


def evaluate(inp: CheckInput, wanted: set[str] | None = None, settings: QualitySettings | None = None) -> list[Finding]:
    """One finding per wanted check and partition (no Dagster involved, so tests can call it)."""
    settings = settings or QualitySettings.from_env()
    wanted = set(CHECKS_BY_NAME) if wanted is None else wanted
    findings = _rule_findings(inp, _problems(inp)) if SCHEMA in wanted else []
    if COMPLETE in wanted:
        findings += _complete_findings(inp, settings)
    if NO_SPIKES in wanted:
        findings += _spike_findings(inp, settings)
    if STALE_PRICES in wanted:
        findings += _stale_findings(inp, settings)
    if QUARANTINE in wanted:
        findings += _quarantine_findings(inp)
    if ANSWER_COVERS_STORE in wanted:
        findings += _answer_findings(inp)
    return findings


def history_lookback(timeframe: Timeframe, settings: QualitySettings) -> pd.Timedelta:
    """How far before a window to read bars so that its first bars have context (weekends included)."""
    return timeframe.delta * max(settings.spike_window, settings.stale_bars) * 4


def partition_windows(context: AssetExecutionContext, start: pd.Timestamp, end: pd.Timestamp) -> list[PartitionWindow]:
    """The run's partitions that lie in [start, end): all of them for the run's whole window, one
    slice's for a slice of a ranged run."""
    pdef = context.assets_def.partitions_def
    if pdef is None or not (context.has_partition_key or context.has_partition_key_range):
        return [PartitionWindow(None, start, end)]
    out = []
    for key in context.partition_keys:
        window = pdef.time_window_for_partition_key(key)  # type: ignore[attr-defined]
        lo, hi = pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")
        if lo < end and hi > start:
            out.append(PartitionWindow(key, lo, hi))
    return out


def _target_materializations(
    context: AssetExecutionContext, asset_key: AssetKey, keys: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """The materialization each partition's evaluation judges (the UI shows a check's status only
    against the partition's latest materialization)."""
    if not keys:
        return {}
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=len(keys)
    ).records
    out: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    for record in records:  # newest first
        partition = record.event_log_entry.dagster_event.partition if record.event_log_entry.dagster_event else None
        if partition is not None and partition not in out:
            out[partition] = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
    return out


def _times_seen(
    store: CandleStore, symbol: str, timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp,
    validated: ValidatedBars,
) -> list[int | None] | None:
    """How often each of this run's rejects has been refused so far (`rejected_candles`), matched
    by fingerprint (None for a row not found there, e.g. one without a bar start)."""
    if not validated.rows_rejected:
        return None
    recorded = store.rejected(symbol, timeframe, start, end)
    seen = dict(zip(recorded["fingerprint"], recorded["times_seen"], strict=True))
    return [None if seen.get(fp) is None else int(seen[fp]) for fp in reject_fingerprints(validated.rejects)]


def candle_check_outputs(context: AssetExecutionContext) -> Iterator[Output]:
    """The (valueless) outputs of the selected checks: a step yields each once, whatever it checks."""
    asset_key = context.asset_key
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == asset_key}
    for output_name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key.name in selected and spec.asset_key == asset_key:
            yield Output(None, output_name=output_name)


def candle_check_events(context: AssetExecutionContext, **window: Any) -> Iterator[Output | AssetCheckEvaluation]:
    """The check outputs and per-partition evaluations of one candle materialization (the keyword
    arguments are `candle_check_evaluations`'s).

    Yield these after the `MaterializeResult`, so each evaluation can name the materialization
    it judged; a failed blocking check then fails the step once all evaluations are recorded.
    """
    yield from candle_check_outputs(context)
    yield from candle_check_evaluations(context, **window)


def candle_check_evaluations(
    context: AssetExecutionContext,
    *,
    store: CandleStore,
    symbol: str,
    timeframe: Timeframe,
    calendar: MarketCalendar,
    start: pd.Timestamp,
    end: pd.Timestamp,
    stored: pd.DataFrame,
    validated: ValidatedBars,
    base_bars: pd.DataFrame | None = None,
    missing_from_answer: pd.DataFrame | None = None,
    removals_accepted: bool = False,
    written: pd.DataFrame | None = None,
    cross_check: xcheck.CrossCheck | None = None,
    history: pd.DataFrame | None = None,
    after: pd.DataFrame | None = None,
    targets: Mapping[str, AssetCheckEvaluationTargetMaterializationData] | None = None,
) -> Iterator[AssetCheckEvaluation]:
    """The per-partition evaluations of the checks of the partitions in [start, end).

    `history` (the stored bars before `start`, read from the store when None) and `after` give the
    spike and stale checks their context; a slice of a ranged run passes the previous slice's last
    bars and the next slice's first ones, so each partition is judged as in one whole-range pass.
    `targets`: the materialization each partition's evaluation judges, looked up when None; a
    ranged run evaluating slices before its one materialization passes `{}` and names the targets
    afterwards (`with_targets`).
    """
    asset_key = context.asset_key
    selected = {k.name for k in context.selected_asset_check_keys if k.asset_key == asset_key}
    partitions = partition_windows(context, start, end)
    if not selected or not partitions:
        return
    settings = QualitySettings.from_env()
    if history is None:
        history = store.read(symbol, timeframe, start - history_lookback(timeframe, settings), start)
    times_seen = _times_seen(store, symbol, timeframe, start, end, validated) if QUARANTINE in selected else None
    inp = CheckInput(
        timeframe, calendar, partitions, stored, validated, history, base_bars, times_seen=times_seen,
        missing_from_answer=missing_from_answer, removals_accepted=removals_accepted, written=written,
        after=after,
    )
    if targets is None:
        targets = _target_materializations(context, asset_key, [p.key for p in partitions if p.key is not None])
    for finding in evaluate(inp, selected, settings):
        check = CHECKS_BY_NAME[finding.check]
        yield AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=finding.check,
            passed=finding.passed,
            metadata=finding.metadata,
            target_materialization_data=targets.get(finding.partition) if finding.partition else None,
            severity=check.severity,
            description=finding.description,
            blocking=check.blocking,
            partition=finding.partition,
        )
    if cross_check is not None and xcheck.CROSS_CHECK in selected:
        yield from _cross_check_evaluations(context, store, cross_check, partitions, targets)


def with_targets(
    context: AssetExecutionContext, evaluations: Iterable[AssetCheckEvaluation], chunk: int = 500
) -> Iterator[AssetCheckEvaluation]:
    """`evaluations` made before their partitions' materialization, each now naming it (looked up
    `chunk` partitions at a time, in the order given)."""
    batch: list[AssetCheckEvaluation] = []
    partitions: set[str | None] = set()
    for evaluation in evaluations:
        if evaluation.partition not in partitions and len(partitions) >= chunk:
            yield from _retargeted(context, batch)
            batch, partitions = [], set()
        batch.append(evaluation)
        partitions.add(evaluation.partition)
    yield from _retargeted(context, batch)


def _retargeted(context: AssetExecutionContext, batch: list[AssetCheckEvaluation]) -> Iterator[AssetCheckEvaluation]:
    keys = list(dict.fromkeys(e.partition for e in batch if e.partition is not None))
    targets = _target_materializations(context, context.asset_key, keys)
    for e in batch:
        yield AssetCheckEvaluation(
            asset_key=e.asset_key, check_name=e.check_name, passed=e.passed, metadata=e.metadata,
            target_materialization_data=targets.get(e.partition) if e.partition else None,
            severity=e.severity, description=e.description, blocking=e.blocking, partition=e.partition,
        )


def _cross_check_evaluations(
    context: AssetExecutionContext, store: CandleStore, check: xcheck.CrossCheck,
    partitions: Sequence[PartitionWindow], targets: Mapping[str, AssetCheckEvaluationTargetMaterializationData],
) -> Iterator[AssetCheckEvaluation]:
    """Per partition, the comparison with the other entry's stored bars, recorded in `provider_comparisons`."""
    tolerance, source = xcheck.resolve_tolerance(check)
    windows = [(p.key, p.start, p.end) for p in partitions]
    for result in xcheck.compare_windows(store, check, windows, tolerance):
        xcheck.record(store, check, result)
        passed, description = xcheck.describe(check, result.comparison)
        yield AssetCheckEvaluation(
            asset_key=context.asset_key,
            check_name=xcheck.CROSS_CHECK,
            passed=passed,
            metadata=xcheck.metadata(check, result.comparison, source),
            target_materialization_data=targets.get(result.key) if result.key else None,
            severity=AssetCheckSeverity.WARN,
            description=description,
            blocking=False,
            partition=result.key,
        )
