"""The secondary queue: which non-critical symbol is refreshed next, with the budget left over.

Order: priority tier (`Priority.rank`, lowered by one per failure today), then how far behind its
market the symbol is relative to its freshness limit (no data first). A symbol is *due* once half
its freshness limit has passed without a bar, so that a refresh lands before the limit; a closed
market is due only until a refresh after the close has run. Each tick spends at most the
unreserved share of the rate budget that one tick interval earns, less the requests the limiter
will still count until the next tick and those that requested-but-unstarted runs will spend. The state that must survive a
restart (failures, the last request and the last success per symbol, the daily cycle) lives in
the sensor's cursor as JSON; the queue as last evaluated is also written to a table so that
`massive-pipeline status` and any SQL client can see it.

One queue, one budget per provider: the symbols are ordered together by priority, but each
provider's are planned against that provider's own budget in the shared limiter (Massive's in
requests, Binance's in request weight, `resources/rate_budgets.py`), computed as above from that
budget's `used_in_last`. So a Massive budget spent to the last request holds back no Binance
symbol and vice versa, and a provider that cannot be asked this tick (Massive without its key)
stops only its own symbols, which wait with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
from dagster import DagsterInstance, DagsterRunStatus, RunRequest, RunsFilter

from massive_pipeline.binance.weights import MAX_KLINES, klines_weight
from massive_pipeline.candles.jobs import job_name_for
from massive_pipeline.core.catalog import Provider, SymbolSpec
from massive_pipeline.core.timeframes import Timeframe
from massive_pipeline.massive.ratelimit import SharedRateLimiter
from massive_pipeline.operations.freshness import SETTLE, Freshness, assess, refresh_days
from massive_pipeline.operations.runs import (
    FINISHED_STATUSES,
    PENDING_STATUSES,
    UNSTARTED_STATUSES,
    daily_run_request,
    failure_reason,
    fetched_timeframes,
    iso_minute,
    pending_runs,
    requests_per_refresh,
)
from massive_pipeline.operations.settings import (
    DAGSTER_PRIORITY_TAG,
    PURPOSE_TAG,
    QUEUE_POSITION_TAG,
    REQUESTED_AT_TAG,
    SYMBOL_TAG,
    OperationsSettings,
    Purpose,
)
from massive_pipeline.resources.rate_budgets import BudgetReading, read_limiter
from massive_pipeline.store import CandleStore

CURSOR_VERSION = 1
DUE_FRACTION = 0.5
# Finished runs are re-read with this overlap so none updated in the same instant is missed;
# `seen` keeps them from being counted twice.
_OVERLAP_SECONDS = 120.0

DUE, WAITING, REQUESTED = "due", "waiting", "requested"
FRESH, CLOSED, RUNNING, BACKOFF, GIVEN_UP = "fresh", "closed", "running", "backoff", "given up"
REFRESHED = "refreshed"  # refreshed moments ago; the provider had nothing newer yet
QUEUED_STATES = (DUE, WAITING, REQUESTED)
# The only states that claim a symbol is where it should be; every other state says why it is not.
UP_TO_DATE_STATES = (FRESH, CLOSED)


def _parse(text: str | None) -> pd.Timestamp | None:
    return None if not text else pd.Timestamp(text).tz_convert("UTC")


def _hm(ts: pd.Timestamp | None) -> str:
    return "never" if ts is None else ts.strftime("%H:%M:%S")


def _when(ts: pd.Timestamp | None) -> str:
    return "never" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: pd.Timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"


@dataclass
class SymbolRecord:
    """What the queue remembers of one symbol within the daily cycle (times are tick times)."""

    failures: int = 0
    last_failure_at: str | None = None
    last_error: str | None = None
    requested_at: str | None = None
    refreshed_at: str | None = None


@dataclass
class QueueState:
    """The sensor cursor: JSON, so it survives restarts and shows in the UI's sensor page."""

    cycle: str
    watermark: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)
    symbols: dict[str, SymbolRecord] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None, today: dt.date) -> QueueState:
        if not cursor:
            return cls(cycle=today.isoformat())
        try:
            raw = json.loads(cursor)
            state = cls(
                cycle=str(raw["cycle"]),
                watermark=float(raw.get("watermark", 0.0)),
                seen={str(k): float(v) for k, v in raw.get("seen", {}).items()},
                symbols={str(k): SymbolRecord(**v) for k, v in raw.get("symbols", {}).items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"secondary queue cursor is not valid queue state ({exc}): {cursor[:80]!r}") from None
        if state.cycle != today.isoformat():
            state.start_cycle(today)
        return state

    def start_cycle(self, today: dt.date) -> None:
        """A new UTC day: symbols given up on get their three attempts back."""
        self.cycle = today.isoformat()
        for record in self.symbols.values():
            record.failures = 0
            record.last_failure_at = None
            record.last_error = None

    def to_cursor(self) -> str:
        return json.dumps(
            {"v": CURSOR_VERSION, "cycle": self.cycle, "watermark": self.watermark, "seen": self.seen,
             "symbols": {k: asdict(v) for k, v in sorted(self.symbols.items())}},
            separators=(",", ":"),
        )

    def record(self, symbol: str) -> SymbolRecord:
        return self.symbols.setdefault(symbol, SymbolRecord())

    def fold_finished_runs(self, instance: DagsterInstance) -> list[str]:
        """Count the secondary runs that finished since the last tick; returns what changed."""
        since = dt.datetime.fromtimestamp(max(0.0, self.watermark - _OVERLAP_SECONDS), tz=dt.UTC)
        records = instance.get_run_records(
            RunsFilter(statuses=list(FINISHED_STATUSES), tags={PURPOSE_TAG: Purpose.SECONDARY_REFRESH.value},
                       updated_after=since),
            limit=1000,
        )
        notes: list[str] = []
        for rec in sorted(records, key=lambda r: r.update_timestamp):
            run = rec.dagster_run
            stamp = rec.update_timestamp.timestamp()
            if run.run_id in self.seen:
                continue
            self.seen[run.run_id] = stamp
            self.watermark = max(self.watermark, stamp)
            symbol = run.tags.get(SYMBOL_TAG)
            requested = run.tags.get(REQUESTED_AT_TAG)
            if not symbol:
                continue
            record = self.record(symbol)
            if run.status is DagsterRunStatus.SUCCESS:
                record.failures = 0
                record.last_error = None
                if requested and (record.refreshed_at is None or requested > record.refreshed_at):
                    record.refreshed_at = requested
                notes.append(f"{symbol} refreshed by run {run.run_id[:8]}")
            elif requested is None or requested[:10] == self.cycle:
                record.failures += 1
                record.last_failure_at = requested
                record.last_error = (failure_reason(instance, run.run_id) if run.status is DagsterRunStatus.FAILURE
                                     else f"run {run.run_id[:8]} was canceled")
                notes.append(f"{symbol} failure {record.failures}: {record.last_error}")
        self.seen = {k: v for k, v in self.seen.items() if v >= self.watermark - _OVERLAP_SECONDS}
        return notes


@dataclass(frozen=True)
class TickBudget:
    """Requests the secondary queue may start this tick, and where the number comes from."""

    per_tick: int
    limit: int
    reserve: int
    window_seconds: float
    lookback_seconds: float
    used: int  # taken in the last `lookback_seconds`: still counted until the next tick
    pending_cost: int
    allowance: int
    provider: str = Provider.MASSIVE.value
    unit: str = "request(s)"  # what the provider's budget counts

    def describe(self) -> str:
        """Massive's reads as it did when it was the only budget; another provider's names itself."""
        label = "" if self.provider == Provider.MASSIVE.value else f"{self.provider} "
        return (f"{label}budget {self.allowance} {self.unit} this tick: unreserved {self.limit - self.reserve} per "
                f"{self.window_seconds:g} s → {self.per_tick} per tick; {self.used} taken in the last "
                f"{self.lookback_seconds:g} s still count; {self.pending_cost} owed by runs not started yet")


def tick_budget(
    limit: int, reserve: int, window_seconds: float, interval_seconds: float, recent: tuple[int, int],
    pending_cost: int, provider: str = Provider.MASSIVE.value, unit: str = "request(s)",
) -> TickBudget:
    """(limit − reserve) × interval ÷ window, less what the limiter will still count until the next tick.

    `recent` is (all, non-critical) requests of the last `window − interval` seconds: the ones
    taken earlier leave the window before the next tick, so counting them would waste budget.
    """
    unreserved = limit - reserve
    per_tick = max(1, math.ceil(unreserved * interval_seconds / window_seconds))
    total, noncritical = recent
    free = max(0, min(unreserved - noncritical, limit - total))
    allowance = max(0, min(per_tick, free) - pending_cost)
    lookback = max(0.0, window_seconds - interval_seconds)
    return TickBudget(per_tick, limit, reserve, window_seconds, lookback, noncritical, pending_cost, allowance,
                      provider, unit)


UNITS = {Provider.MASSIVE.value: "request(s)", Provider.BINANCE.value: "weight unit(s)"}


def binance_weight_per_refresh(spec: SymbolSpec, days: int = 1) -> int:
    """Request weight one refresh of `days` days charges: the client pages each fetched timeframe's
    window by at most 1,000 klines, each page weighing what its `limit` does (`binance/weights.py`).
    An upper bound: the client stops at the first short page, so today's partition often costs less."""
    total = 0
    for tf in fetched_timeframes(spec):
        full, rest = divmod(max(1, days * 1440 // tf.minutes), MAX_KLINES)
        total += full * klines_weight(MAX_KLINES) + (klines_weight(rest) if rest else 0)
    return total


def refresh_cost(spec: SymbolSpec, days: int = 1) -> int:
    """What one refresh of `days` days costs in the unit of the symbol's provider's budget."""
    if spec.provider is Provider.BINANCE:
        return binance_weight_per_refresh(spec, days)
    return requests_per_refresh(spec, days)


@dataclass(frozen=True)
class QueueEntry:
    spec: SymbolSpec
    freshness: Freshness
    record: SymbolRecord
    state: str
    reason: str
    cost: int
    days: tuple[dt.date, dt.date] | None
    position: int | None = None

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def provider(self) -> str:
        return self.spec.provider.value

    @property
    def effective_rank(self) -> int:
        return self.spec.priority.rank + self.record.failures

    @property
    def behind(self) -> bool:
        return self.state in QUEUED_STATES and self.freshness.stale


def _entry(spec: SymbolSpec, store: CandleStore, state: QueueState, now: pd.Timestamp, running: str | None,
           settings: OperationsSettings) -> QueueEntry:
    base = spec.base_timeframe
    fresh = assess(spec, base, store.last_bar_ts(spec.symbol, base), now)
    record = state.symbols.get(spec.symbol, SymbolRecord())
    limit = fresh.limit

    def make(status: str, reason: str, days: tuple[dt.date, dt.date] | None = None) -> QueueEntry:
        cost = refresh_cost(spec, (days[1] - days[0]).days + 1) if days else refresh_cost(spec)
        return QueueEntry(spec, fresh, record, status, reason, cost, days)

    def due(reason: str) -> QueueEntry:
        days = refresh_days(spec, fresh, midnight_grace=settings.midnight_grace, catch_up_days=settings.catch_up_days)
        return make(DUE, reason, days)

    if record.failures >= settings.max_failures:
        return make(GIVEN_UP, f"gave up after {record.failures} failures today (last: {record.last_error}); "
                              "tried again in the next daily cycle (00:00 UTC)")
    if running is not None:
        return make(RUNNING, f"run {running[:8]} in progress")
    failed_at = _parse(record.last_failure_at)
    if record.failures and failed_at is not None:
        retry_at = failed_at + pd.Timedelta(seconds=settings.secondary_interval_seconds * 2**record.failures)
        if now < retry_at:
            return make(BACKOFF, f"failure {record.failures}/{settings.max_failures} ({record.last_error}); "
                                 f"retry after {_hm(retry_at)}")
    refreshed = _parse(record.refreshed_at)
    lag_text = f"lag {fmt_duration(fresh.lag)} of {fmt_duration(limit)}"
    if fresh.last_bar is None:
        return due("no bars stored")
    if not fresh.market_open:
        if not fresh.stale:
            return make(CLOSED, f"market closed since {_when(fresh.reference)}; last bar reaches the close")
        if refreshed is not None and fresh.reference is not None and refreshed >= fresh.reference + SETTLE:
            return make(CLOSED, f"market closed since {_when(fresh.reference)}; refreshed at {_when(refreshed)}, "
                                "the provider has nothing newer")
        return due(f"market closed, last bar short of the close ({lag_text})")
    if fresh.ratio < DUE_FRACTION:
        return make(FRESH, lag_text)
    if refreshed is not None and now - refreshed < limit * DUE_FRACTION:
        note = f"{lag_text}; refreshed at {_hm(refreshed)}, the provider has no newer bar yet"
        return make(REFRESHED, f"behind: {note}") if fresh.stale else make(FRESH, note)
    return due(lag_text)


def order_queue(
    specs: Iterable[SymbolSpec],
    store: CandleStore,
    state: QueueState,
    now: pd.Timestamp,
    running: Mapping[str, str],
    settings: OperationsSettings,
) -> list[QueueEntry]:
    """Every secondary symbol, in queue order, with its state; due ones numbered from 1."""
    entries = [
        _entry(spec, store, state, now, running.get(spec.symbol), settings)
        for spec in specs
    ]
    entries.sort(key=lambda e: (e.effective_rank, -e.freshness.ratio, e.symbol))
    position = 0
    out: list[QueueEntry] = []
    for entry in entries:
        if entry.state in QUEUED_STATES:
            position += 1
            entry = replace(entry, position=position)
        out.append(entry)
    return out


def take_within_budget(entries: Sequence[QueueEntry], budgets: TickBudget | Mapping[str, TickBudget],
                       unavailable: Mapping[str, str] | None = None) -> list[QueueEntry]:
    """Mark the due entries this tick can afford `requested`, the rest `waiting`, in strict order
    within each provider's budget (`budgets` by provider; a single one is Massive's).

    An entry is taken while any of the tick's allowance is left, even if it costs more than what is
    left (an index with a fetched D1 costs two): the limiter makes its extra request wait a moment,
    whereas holding the remainder back would let every cheaper symbol behind it wait a whole tick.
    A provider without a budget this tick (`unavailable` says why) has its due entries wait.
    """
    by_provider = {budgets.provider: budgets} if isinstance(budgets, TickBudget) else dict(budgets)
    left = {provider: budget.allowance for provider, budget in by_provider.items()}
    out: list[QueueEntry] = []
    for entry in entries:
        if entry.state != DUE:
            out.append(entry)
            continue
        behind = "behind: " if entry.freshness.stale else ""
        budget = by_provider.get(entry.provider)
        if budget is None:
            why = (unavailable or {}).get(entry.provider, f"no rate budget for provider {entry.provider}")
            out.append(replace(entry, state=WAITING, reason=f"{behind}{entry.reason}; not requested: {why}"))
            continue
        if left[entry.provider] > 0:
            left[entry.provider] -= entry.cost
            out.append(replace(entry, state=REQUESTED, reason=f"{entry.reason}; requested"))
            continue
        spent = budget.allowance - max(left[entry.provider], 0)
        out.append(replace(entry, state=WAITING,
                           reason=f"{behind}{entry.reason}; waiting for budget ({spent} spent on the queue ahead; "
                                  f"{budget.describe()})"))
    return out


def run_requests(entries: Sequence[QueueEntry], now: pd.Timestamp,
                 settings: OperationsSettings | None = None) -> list[RunRequest]:
    """The requested entries' runs; each carries the queue's max runtime, so a run that hangs or
    whose process died is failed by run monitoring and its symbol queued again."""
    settings = settings or OperationsSettings()
    runtime = settings.runtime_tags(Purpose.SECONDARY_REFRESH)
    run_config = settings.run_config(Purpose.SECONDARY_REFRESH)
    requests = []
    for entry in entries:
        if entry.state != REQUESTED or entry.days is None:
            continue
        tags = {QUEUE_POSITION_TAG: str(entry.position), DAGSTER_PRIORITY_TAG: str(-entry.record.failures), **runtime}
        requests.append(daily_run_request(entry.spec, *entry.days, Purpose.SECONDARY_REFRESH, now, tags,
                                          run_config=run_config))
    return requests


def queue_table(entries: Sequence[QueueEntry]) -> str:
    """The queue as fixed-width text: the tick's log and skip reason, and the CLI's view."""
    lines = [f"{'pos':>3} {'symbol':<8} {'tier':<7} {'age':>7} {'limit':>6} {'retries':>7}  {'state':<9} reason"]
    for e in entries:
        pos = "-" if e.position is None else str(e.position)
        lines.append(
            f"{pos:>3} {e.symbol:<8} {e.spec.priority.value:<7} {fmt_duration(e.freshness.age):>7} "
            f"{fmt_duration(e.freshness.limit):>6} {e.record.failures:>7}  {e.state:<9} {e.reason}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class QueueTick:
    now: pd.Timestamp
    entries: list[QueueEntry]
    tick_budgets: Mapping[str, TickBudget]  # by provider: what this tick could spend of each
    requests: list[RunRequest]
    state: QueueState
    notes: list[str]
    budgets: tuple[BudgetReading, ...] = ()  # every provider's budget as the tick saw it, Massive's first
    unavailable: Mapping[str, str] = field(default_factory=dict)  # provider: why its symbols are not asked

    def summary(self) -> str:
        due = sum(1 for e in self.entries if e.state in QUEUED_STATES)
        behind = [e.symbol for e in self.entries if e.behind]
        spendable = [b.describe() for b in self.tick_budgets.values()]
        stopped = [f"{provider} symbols not requested: {why}" for provider, why in self.unavailable.items()]
        head = (f"secondary queue at {iso_minute(self.now)}: {due} due, {len(self.requests)} requested; "
                f"{'; '.join(spendable + stopped)}")
        if behind:
            head += f"; behind their freshness limit: {', '.join(behind)}"
        if len(self.budgets) > 1:  # one budget alone is what `describe` already says
            head += f"; rate budgets: {'; '.join(b.brief() for b in self.budgets)}"
        return head


def secondary_specs(specs: Iterable[SymbolSpec]) -> list[SymbolSpec]:
    return [s for s in specs if not s.is_critical and s.base_timeframe is not Timeframe.W1]


def pending_by_symbol(
    instance: DagsterInstance, specs: Sequence[SymbolSpec], statuses: Sequence[DagsterRunStatus] = PENDING_STATUSES
) -> dict[str, str]:
    """{symbol: run id} of secondary runs in `statuses` (default: not finished), any daily job of these symbols."""
    jobs = {job_name_for(s, Timeframe.D1) for s in specs}
    out: dict[str, str] = {}
    for key, run_id in pending_runs(instance, Purpose.SECONDARY_REFRESH, job_names=jobs, statuses=statuses).items():
        out.setdefault(key.split("|", 1)[1], run_id)
    return out


def _tick_budget(provider: str, limiter: SharedRateLimiter, unstarted: Iterable[SymbolSpec],
                 interval: float) -> TickBudget:
    """`provider`'s share this tick; requests a started run has taken are in the limiter's count
    already, those of its runs not started yet (`unstarted`) are not."""
    pending_cost = sum(refresh_cost(s) for s in unstarted if s.provider.value == provider)
    recent = limiter.used_in_last(max(0.0, limiter.window_seconds - interval))
    return tick_budget(limiter.limit, limiter.reserve, limiter.window_seconds, interval, recent, pending_cost,
                       provider, UNITS.get(provider, "unit(s)"))


def evaluate_queue(
    specs: Sequence[SymbolSpec],
    store: CandleStore,
    instance: DagsterInstance,
    limiters: SharedRateLimiter | Mapping[str, SharedRateLimiter],
    cursor: str | None,
    now: pd.Timestamp,
    settings: OperationsSettings,
    *,
    unavailable: Mapping[str, str] | None = None,
    other_budgets: Sequence[BudgetReading] = (),
) -> QueueTick:
    """One tick of the secondary queue: fold finished runs into the state, order, spend the budgets.

    `limiters` are by provider (a single one is Massive's); each provider's symbols spend its own.
    A provider missing from them has its symbols wait, for the reason `unavailable` gives.
    `other_budgets` (budgets the queue does not spend) are shown beside them in the summary."""
    by_provider = {limiters.budget: limiters} if isinstance(limiters, SharedRateLimiter) else dict(limiters)
    state = QueueState.from_cursor(cursor, now.date())
    notes = state.fold_finished_runs(instance)
    running = pending_by_symbol(instance, specs)
    by_symbol = {s.symbol: s for s in specs}
    unstarted = [by_symbol[s] for s in pending_by_symbol(instance, specs, UNSTARTED_STATUSES) if s in by_symbol]
    interval = settings.secondary_interval_seconds
    budgets = {provider: _tick_budget(provider, limiter, unstarted, interval)
               for provider, limiter in by_provider.items()}
    stopped = {p: why for p, why in (unavailable or {}).items() if p not in budgets}
    entries = take_within_budget(order_queue(specs, store, state, now, running, settings), budgets, stopped)
    requests = run_requests(entries, now, settings)
    for entry in entries:
        if entry.state == REQUESTED:
            state.record(entry.symbol).requested_at = iso_minute(now)
    readings = (*(read_limiter(limiter) for limiter in by_provider.values()), *other_budgets)
    return QueueTick(now, entries, budgets, requests, state, notes, readings, stopped)
