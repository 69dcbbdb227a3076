"""Where every series stands: last bar and its age, sync status, queue position, open gaps, budgets,
and the latest cross-check of each pair of sources (`provider_comparisons`).

`massive-pipeline status` prints it and the data service's `GET /status` answers it as JSON, both
from `current_status`, so the two cannot disagree; the command also writes the same figures (last
bar, row count) back to `sync_status` for every catalog series, so the table and the report agree
without touching `last_sync_at` or the status a run recorded. Queue positions are computed now,
with the failures the secondary-queue sensor last recorded, by the same function the sensor uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from dagster import DagsterInstance
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from massive_pipeline.core.catalog import Catalog, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.ratelimit import DEFAULT_BUDGET, LimiterStats
from massive_pipeline.operations.freshness import assess
from massive_pipeline.operations.queue import (
    QueueEntry,
    QueueState,
    SymbolRecord,
    fmt_duration,
    order_queue,
    pending_by_symbol,
    secondary_specs,
)
from massive_pipeline.operations.queue_report import read_queue_report
from massive_pipeline.operations.settings import OperationsSettings
from massive_pipeline.resources.massive import MassiveResource, massive_resource_from_env
from massive_pipeline.resources.rate_budgets import BudgetReading, providers_of, read_other_budgets
from massive_pipeline.store import CandleStore
from massive_pipeline.store.engine import SQLITE_BEGIN_OPTION
from massive_pipeline.store.schema import sync_status

OPEN_GAP_STATES = ("detected", "filling")


@dataclass(frozen=True)
class SeriesStatus:
    symbol: str
    priority: str
    timeframe: Timeframe
    last_bar: pd.Timestamp | None
    age: pd.Timedelta | None
    freshness: str
    rows: int
    sync: str
    sync_error: str | None
    queue: str
    retries: int | None
    open_gaps: int

    def as_json(self) -> dict[str, Any]:
        """The series as JSON values: ISO 8601 UTC times, the age in seconds."""
        return {
            "symbol": self.symbol, "priority": self.priority, "timeframe": self.timeframe.value,
            "last_bar": _iso(self.last_bar), "age_seconds": None if self.age is None else self.age.total_seconds(),
            "freshness": self.freshness, "rows": self.rows, "sync": self.sync, "sync_error": self.sync_error,
            "queue": self.queue, "retries": self.retries, "open_gaps": self.open_gaps,
        }


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.tz_convert("UTC").isoformat().replace("+00:00", "Z")


@dataclass
class StatusReport:
    at: pd.Timestamp
    series: list[SeriesStatus]
    limiter: LimiterStats | None = None  # Massive's budget
    limiter_error: str | None = None
    queue_evaluated_at: pd.Timestamp | None = None
    recorded: int = 0
    entries: list[QueueEntry] = field(default_factory=list)
    other_budgets: list[BudgetReading] = field(default_factory=list)  # every other provider's budget
    # the newest partition's cross-check of each pair whose symbol is reported (provider_comparisons)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{
                "symbol": s.symbol, "priority": s.priority, "tf": s.timeframe.value,
                "last_bar": "-" if s.last_bar is None else s.last_bar.strftime("%Y-%m-%d %H:%M"),
                "age": fmt_duration(s.age), "freshness": s.freshness, "rows": s.rows,
                "sync": s.sync if not s.sync_error else f"{s.sync}: {s.sync_error[:60]}",
                "queue": s.queue, "retries": "-" if s.retries is None else s.retries, "open_gaps": s.open_gaps,
            } for s in self.series]
        )

    def as_json(self, timeframes: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The report as JSON values; `timeframes` ({symbol: timeframe}) keeps one series per symbol,
        as the command prints by default (its base timeframe)."""
        series = [s for s in self.series if timeframes is None or timeframes.get(s.symbol) == s.timeframe.value]
        return {
            "at": _iso(self.at),
            "limiter": None if self.limiter is None else self.limiter.as_dict(),
            "limiter_error": self.limiter_error,
            "limiter_line": self.limiter_line(),
            "budgets": [b.as_json() for b in self.budgets()],
            "queue_evaluated_at": _iso(self.queue_evaluated_at),
            "series": [s.as_json() for s in series],
            "provider_comparisons": [
                {**{k: (None if pd.isna(v) else v) for k, v in row.items() if k != "compared_at"},
                 "compared_at": _iso(row["compared_at"])}
                for row in self.comparisons.to_dict("records")
            ],
        }

    def budgets(self) -> list[BudgetReading]:
        """Every configured budget, Massive's first."""
        massive = BudgetReading(DEFAULT_BUDGET, "requests", self.limiter, self.limiter_error)
        return [massive, *self.other_budgets]

    def comparisons_frame(self) -> pd.DataFrame:
        """The cross-checks as the command prints them: percentages, the pair, its newest partition."""
        def pct(value: object) -> str:
            return "-" if value is None or pd.isna(value) else f"{float(value):+.4%}"  # type: ignore[arg-type]

        return pd.DataFrame(
            [{
                "symbol": r.symbol, "other": r.other_symbol, "tf": r.timeframe, "partition": r.partition,
                "bars": int(r.bars_compared), "basis": pct(r.basis),
                "median_diff": pct(r.median_rel_diff).lstrip("+"), "max_diff": pct(r.max_rel_diff).lstrip("+"),
                "over_tolerance": f"{int(r.bars_over_tolerance)} (> {r.tolerance:.3%})",
                "compared_at": r.compared_at.strftime("%Y-%m-%d %H:%M"),
            } for r in self.comparisons.itertuples(index=False)]
        )

    def limiter_line(self) -> str:
        """Massive's budget in one line."""
        return self.budgets()[0].line()

    def budget_lines(self) -> list[str]:
        """One line per configured budget, as `status` prints them."""
        return [b.line() for b in self.budgets()]


def _queue_state(store: CandleStore, today) -> tuple[QueueState, pd.Timestamp | None]:
    """The failures the sensor last recorded, as queue state (its cursor lives in the instance)."""
    report = read_queue_report(store)
    state = QueueState(cycle=today.isoformat())
    evaluated = None
    for row in report.itertuples(index=False):
        evaluated = row.evaluated_at
        if row.failures:
            state.symbols[row.symbol] = SymbolRecord(failures=int(row.failures), last_error=row.last_error)
    if evaluated is not None and evaluated.date() != today:
        state.start_cycle(today)
    return state, evaluated


def _queue_labels(entries: Sequence[QueueEntry]) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for e in entries:
        label = e.state if e.position is None else f"{e.position} ({e.state})"
        out[e.symbol] = (label, e.record.failures)
    return out


def collect_status(
    catalog: Catalog,
    store: CandleStore,
    now: pd.Timestamp,
    *,
    specs: Sequence[SymbolSpec] | None = None,
    running: Mapping[str, str] | None = None,
    limiter: LimiterStats | None = None,
    limiter_error: str | None = None,
    settings: OperationsSettings | None = None,
    other_budgets: Sequence[BudgetReading] = (),
) -> StatusReport:
    """Every series of `specs` (default: the catalog), all timeframes; the CLI chooses what to print."""
    settings = settings or OperationsSettings()
    specs = list(specs) if specs is not None else list(catalog)
    counts = store.row_counts()
    by_series = {(r.symbol, r.timeframe): r for r in counts.itertuples(index=False)}
    syncs = {(r.symbol, r.timeframe): r for r in store.sync_status().itertuples(index=False)}
    gaps = store.gaps()
    open_gaps: dict[tuple[str, str], int] = {}
    if len(gaps):
        live = gaps[gaps["status"].isin(OPEN_GAP_STATES)]
        open_gaps = {k: int(v) for k, v in live.groupby(["symbol", "timeframe"]).size().items()}
    state, evaluated = _queue_state(store, now.date())
    entries = order_queue(secondary_specs(specs), store, state, now, running or {}, settings)
    labels = _queue_labels(entries)
    series: list[SeriesStatus] = []
    for spec in specs:
        for tf in spec.timeframes:
            row = by_series.get((spec.symbol, tf.value))
            last = None if row is None else pd.Timestamp(row.last_ts)
            sync = syncs.get((spec.symbol, tf.value))
            if spec.is_critical:
                queue, retries = "critical: every 5 min", None
            else:
                queue, retries = labels.get(spec.symbol, ("-", 0))
            series.append(SeriesStatus(
                symbol=spec.symbol, priority=spec.priority.value, timeframe=tf, last_bar=last,
                age=None if last is None else now - last, freshness=assess(spec, tf, last, now).label,
                rows=0 if row is None else int(row.rows),
                sync="never" if sync is None else str(sync.status),
                sync_error=None if sync is None or not isinstance(sync.error, str) else sync.error,
                queue=queue, retries=retries, open_gaps=open_gaps.get((spec.symbol, tf.value), 0),
            ))
    comparisons = store.latest_provider_comparisons()
    comparisons = comparisons[comparisons["symbol"].isin({s.symbol for s in specs})].reset_index(drop=True)
    return StatusReport(at=now, series=series, limiter=limiter, limiter_error=limiter_error,
                        queue_evaluated_at=evaluated, entries=entries, other_budgets=list(other_budgets),
                        comparisons=comparisons)


def limiter_reading(massive: MassiveResource | None = None) -> tuple[LimiterStats | None, str | None]:
    """The shared budget's statistics, or why they cannot be read: the report is still useful
    without the budget line, so an unreachable limiter is an answer, not an error."""
    try:
        with (massive or massive_resource_from_env()).build_limiter() as shared:
            return shared.stats(), None
    except Exception as exc:  # noqa: BLE001 - any backend failure is reported in the line
        return None, f"{type(exc).__name__}: {exc}"


def current_status(
    catalog: Catalog,
    store: CandleStore,
    instance: DagsterInstance,
    *,
    specs: Sequence[SymbolSpec] | None = None,
    massive: MassiveResource | None = None,
    now: pd.Timestamp | None = None,
) -> StatusReport:
    """The status report as of now: every configured rate budget, the secondary runs the instance has in
    progress, and every series of `specs` (default: the catalog). What `massive-pipeline status`
    prints and `GET /status` answers."""
    specs = list(specs) if specs is not None else list(catalog)
    limiter, limiter_error = limiter_reading(massive)
    others = read_other_budgets(providers_of(catalog))
    running = pending_by_symbol(instance, secondary_specs(specs))
    at = pd.Timestamp.now(tz="UTC") if now is None else now
    return collect_status(catalog, store, at, specs=specs, running=running, limiter=limiter,
                          limiter_error=limiter_error, other_budgets=others)


def record_status(store: CandleStore, report: StatusReport) -> int:
    """Write each series' last bar and row count to `sync_status`; returns the series written.

    A series with no row yet gets one (`ok` if it has bars, else `never`); an existing row keeps
    its status, error and `last_sync_at`, which only runs may set.
    """
    now = pd.Timestamp.now(tz="UTC")
    dialect_insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with conn.begin():
            existing = {(r.symbol, r.timeframe) for r in conn.execute(select(sync_status.c.symbol, sync_status.c.timeframe))}
            for s in report.series:
                values = {"last_bar_ts": s.last_bar, "rows": s.rows, "updated_at": now}
                key = (s.symbol, s.timeframe.value)
                if key in existing:
                    conn.execute(update(sync_status)
                                 .where(sync_status.c.symbol == s.symbol, sync_status.c.timeframe == s.timeframe.value)
                                 .values(**values))
                else:  # a run may have written the row meanwhile: its values win
                    conn.execute(dialect_insert(sync_status).values(
                        symbol=s.symbol, timeframe=s.timeframe.value, status="ok" if s.rows else "never", **values,
                    ).on_conflict_do_nothing(index_elements=[sync_status.c.symbol, sync_status.c.timeframe]))
    report.recorded = len(report.series)
    return report.recorded
